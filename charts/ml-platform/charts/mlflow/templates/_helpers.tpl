{{/*
Helpers of the mlflow subchart. Every define is prefixed `mlflow.` so the umbrella chart's
helpers (`ml-platform.`) and the upstream charts' never collide.
*/}}

{{/* Object name: `<release>-mlflow` unless fullnameOverride. */}}
{{- define "mlflow.fullname" -}}
{{- default (printf "%s-%s" .Release.Name .Chart.Name) .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "mlflow.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: tracking-server
{{- end -}}

{{- define "mlflow.labels" -}}
{{ include "mlflow.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: ml-platform
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* "true" when basic auth is on: auth.enabled true, or auto with the Ingress enabled. */}}
{{- define "mlflow.authEnabled" -}}
{{- if or (eq (toString .Values.auth.enabled) "true") (and (eq (toString .Values.auth.enabled) "auto") .Values.ingress.enabled) -}}true{{- end -}}
{{- end -}}

{{/* repository:tag, global.imageRegistry replacing the repository's registry host. */}}
{{- define "mlflow.image" -}}
{{- $parts := splitList "/" .Values.image.repository -}}
{{- with ((.Values.global).imageRegistry) -}}
{{- if and (gt (len $parts) 1) (or (contains "." (first $parts)) (contains ":" (first $parts)) (eq (first $parts) "localhost")) -}}{{- $parts = rest $parts -}}{{- end -}}
{{- $parts = prepend $parts (trimSuffix "/" .) -}}
{{- end -}}
{{- printf "%s:%s" (join "/" $parts) (toString .Values.image.tag) -}}
{{- end -}}

{{- define "mlflow.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "mlflow.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/*
Host headers the server accepts (MLflow >= 3.5 rejects the others): the Service under each of
its DNS names, with and without a port; the Ingress hosts; localhost for port-forwards; extras.
*/}}
{{- define "mlflow.allowedHosts" -}}
{{- $svc := include "mlflow.fullname" . -}}
{{- $ns := .Release.Namespace -}}
{{- $hosts := list -}}
{{- range $name := list $svc (printf "%s.%s" $svc $ns) (printf "%s.%s.svc" $svc $ns) (printf "%s.%s.svc.cluster.local" $svc $ns) "localhost" "127.0.0.1" -}}
{{- $hosts = append $hosts $name -}}
{{- $hosts = append $hosts (printf "%s:*" $name) -}}
{{- end -}}
{{- if .Values.ingress.enabled -}}
{{- range .Values.ingress.hosts -}}
{{- $hosts = append $hosts .host -}}
{{- $hosts = append $hosts (printf "%s:*" .host) -}}
{{- end -}}
{{- end -}}
{{- range .Values.server.extraAllowedHosts -}}
{{- $hosts = append $hosts . -}}
{{- end -}}
{{- join "," (uniq $hosts) -}}
{{- end -}}

{{- define "mlflow.imagePullSecrets" -}}
{{- if .Values.imagePullSecrets -}}
imagePullSecrets:
{{- range .Values.imagePullSecrets }}
  - name: {{ if kindIs "string" . }}{{ . }}{{ else }}{{ .name }}{{ end }}
{{- end }}
{{- end }}
{{- end -}}

{{/* The backend-store URI in the environment (postgresql), and HOME for an arbitrary UID. */}}
{{- define "mlflow.storeEnv" -}}
# The image has no home for an arbitrary UID; caches and temp files go to /tmp.
- name: HOME
  value: /tmp
{{- if eq .Values.backendStore.type "postgresql" }}
- name: MLFLOW_BACKEND_STORE_URI
  valueFrom:
    secretKeyRef:
      name: {{ tpl .Values.backendStore.postgresql.uriSecret.name . }}
      key: {{ .Values.backendStore.postgresql.uriSecret.key }}
{{- end }}
{{- end -}}

{{- define "mlflow.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
{{- if eq .Values.backendStore.type "sqlite" }}
- name: db
  mountPath: /mlflow/db
{{- end }}
{{- with .Values.extraVolumeMounts }}
{{ toYaml . }}
{{- end }}
{{- end -}}
