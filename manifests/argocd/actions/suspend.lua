-- Stop scheduling new runs (running ones finish); missed slots follow spec.schedule.catchUp on resume.
obj.spec.suspend = true
return obj
