-- Schedule runs again.
obj.spec.suspend = false
return obj
