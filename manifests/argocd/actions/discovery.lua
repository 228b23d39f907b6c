-- Actions offered for an OpenClawCronJob: run now (always), suspend or resume (whichever applies).
local actions = {}
local suspended = obj.spec ~= nil and obj.spec.suspend == true
actions["run-now"] = {["disabled"] = false, ["iconClass"] = "fa fa-fw fa-play"}
actions["suspend"] = {["disabled"] = suspended, ["iconClass"] = "fa fa-fw fa-pause"}
actions["resume"] = {["disabled"] = not suspended, ["iconClass"] = "fa fa-fw fa-redo"}
return actions
