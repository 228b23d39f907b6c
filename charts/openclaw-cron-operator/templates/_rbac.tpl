{{/* Rules shared by the ClusterRole (all namespaces) and the per-namespace Roles. */}}
{{- define "ocj.namespacedRules" }}
  # The custom resource: read, write back finalizers/annotations, delete one-shot jobs (deleteAfterRun).
  - apiGroups: ["cron.openclaw.io"]
    resources: ["openclawcronjobs"]
    verbs: ["get", "list", "watch", "patch", "update", "delete"]
  - apiGroups: ["cron.openclaw.io"]
    resources: ["openclawcronjobs/status"]
    verbs: ["get", "patch", "update"]
  # Run Pods carry a controller ownerReference with blockOwnerDeletion; clusters with the
  # OwnerReferencesPermissionEnforcement admission plugin require this to set it.
  - apiGroups: ["cron.openclaw.io"]
    resources: ["openclawcronjobs/finalizers"]
    verbs: ["update"]
  # Run Pods: started per run, watched for their outcome, deleted beyond the history limits
  # (several at once by label selector: deletecollection).
  - apiGroups: [""]
    resources: ["pods"]
    verbs: ["get", "list", "watch", "create", "delete", "deletecollection"]
  # The run archive keeps the tail of each finished run Pod's log (read before the Pod is pruned).
  - apiGroups: [""]
    resources: ["pods/log"]
    verbs: ["get"]
  # Only `get`: to check that a job's gateway token Secret (and key) exists before a run, so a
  # missing Secret is a clear Ready=False instead of a Pod stuck in CreateContainerConfigError.
  # The token itself is handed to run Pods by secretKeyRef, never read into the operator's output.
  - apiGroups: [""]
    resources: ["secrets"]
    verbs: ["get"]
  # Only `get`: run conditions (spec.conditions[].configMapKeyRef, secretKeyRef) read the one
  # key they name when a slot is due; the value is compared, never written anywhere.
  - apiGroups: [""]
    resources: ["configmaps"]
    verbs: ["get"]
  # `list`: the console shows a job's Events, after a SubjectAccessReview said the user may list them.
  - apiGroups: [""]
    resources: ["events"]
    verbs: ["create", "patch", "list"]
  - apiGroups: ["events.k8s.io"]
    resources: ["events"]
    verbs: ["create", "patch"]
{{- end }}
{{- define "ocj.discoveryRules" }}
  # kopf watches CRDs to learn when the resources it serves appear or change.
  - apiGroups: ["apiextensions.k8s.io"]
    resources: ["customresourcedefinitions"]
    verbs: ["get", "list", "watch"]
{{- end }}
