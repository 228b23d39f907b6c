{{/* Chart name, overridable. */}}
{{- define "ocj.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Fully qualified app name; the release name alone when it already contains the chart name. */}}
{{- define "ocj.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "ocj.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Selector labels: stable across upgrades (a Deployment's selector is immutable). */}}
{{- define "ocj.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ocj.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "ocj.labels" -}}
helm.sh/chart: {{ include "ocj.chart" . }}
{{ include "ocj.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: openclaw
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "ocj.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "ocj.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The operator image; the runner image defaults to the same one (it ships openclaw-cron-runner). */}}
{{- define "ocj.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}
{{- end -}}

{{- define "ocj.runnerImage" -}}
{{- default (include "ocj.image" .) .Values.runner.image -}}
{{- end -}}

{{- define "ocj.peeringName" -}}
{{- default (include "ocj.fullname" .) .Values.peering.name -}}
{{- end -}}

{{/* "true" when the operator watches every namespace (no list given). */}}
{{- define "ocj.clusterWide" -}}
{{- if not .Values.watch.namespaces -}}true{{- end -}}
{{- end -}}

{{/* Several replicas: a StatefulSet, so each Pod has an index and so a distinct kopf priority. */}}
{{- define "ocj.ha" -}}
{{- if gt (int .Values.replicas) 1 -}}true{{- end -}}
{{- end -}}

{{- define "ocj.notifySecretName" -}}
{{- default (printf "%s-notify" (include "ocj.fullname" .)) .Values.notify.existingSecret -}}
{{- end -}}

{{- define "ocj.notifyEnabled" -}}
{{- if or .Values.notify.existingSecret .Values.notify.channels -}}true{{- end -}}
{{- end -}}

{{/* Where the notify channels file is mounted, whatever the Secret's key is called. */}}
{{- define "ocj.notifyPath" -}}
/etc/openclaw-cron/notify.yaml
{{- end -}}

{{/* The run archive (docs/archive.md): names shared by the Deployment and archive.yaml. */}}
{{- define "ocj.archiveEnabled" -}}
{{- if .Values.archive.enabled -}}true{{- end -}}
{{- end -}}

{{/* The archive's API through the aggregation layer (APIService, serving certificate, auth RBAC). */}}
{{- define "ocj.archiveApi" -}}
{{- if and .Values.archive.enabled .Values.archive.api.enabled -}}true{{- end -}}
{{- end -}}

{{- define "ocj.archiveName" -}}
{{- printf "%s-archive" (include "ocj.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "ocj.archiveTlsSecret" -}}
{{- printf "%s-tls" (include "ocj.archiveName" .) -}}
{{- end -}}

{{- define "ocj.archivePvc" -}}
{{- default (printf "%s-data" (include "ocj.archiveName" .)) .Values.archive.sqlite.existingClaim -}}
{{- end -}}
