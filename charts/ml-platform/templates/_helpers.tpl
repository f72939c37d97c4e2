{{/*
Helpers of the ml-platform umbrella chart. Every define is prefixed `ml-platform.` so the
subcharts' helpers (airflow, minio, nvidia-device-plugin, mlflow) can never collide.

Connection facts follow the Bitnami pattern: one small helper per fact (endpoint, region,
secret name, bucket, tracking URI, database host …) that knows whether the bundled service or
the external one is in use. Templates ask the helper and never look at `minio.enabled` or
`externalS3.enabled` themselves.
*/}}

{{/* ---------------------------------------------------------------- names and labels */}}

{{/* Prefix of every object name: the release name (as the official Airflow chart does). */}}
{{- define "ml-platform.fullname" -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels: include with (dict "root" $ "component" "model-server"). */}}
{{- define "ml-platform.selectorLabels" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "ml-platform.labels" -}}
{{ include "ml-platform.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: ml-platform
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* The namespaces this chart writes to, without duplicates (release, training, serving). */}}
{{- define "ml-platform.workloadNamespaces" -}}
{{- list .Release.Namespace .Values.namespaces.training .Values.namespaces.serving | uniq | toJson -}}
{{- end -}}

{{/* ---------------------------------------------------------------- images */}}

{{- define "ml-platform.trainerImage" -}}
{{- printf "%s:%s" .Values.images.trainer.repository .Values.images.trainer.tag -}}
{{- end -}}

{{- define "ml-platform.imagePullSecrets" -}}
{{- if .Values.imagePullSecrets -}}
imagePullSecrets:
{{- range .Values.imagePullSecrets }}
  - name: {{ . }}
{{- end }}
{{- end }}
{{- end -}}

{{/* ---------------------------------------------------------------- pod security */}}

{{/* Restricted pod securityContext. include with (dict "uid" 1000). */}}
{{- define "ml-platform.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .uid }}
runAsGroup: {{ .uid }}
fsGroup: {{ .uid }}
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Restricted container securityContext. */}}
{{- define "ml-platform.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
privileged: false
capabilities:
  drop:
    - ALL
{{- end -}}

{{/* ---------------------------------------------------------------- generated secrets */}}

{{/*
A credential generated once per release and then kept:
  1. the explicit value, when given;
  2. the value already stored in the Secret (upgrades: `lookup` reads the cluster);
  3. a random string, memoised for this render so every template that asks gets the same one.
include with (dict "root" $ "secret" NAME "key" KEY "value" EXPLICIT "length" N)
*/}}
{{- define "ml-platform.generated" -}}
{{- if .value -}}
{{- .value -}}
{{- else -}}
{{- $root := .root -}}
{{- if not (hasKey $root "mlPlatformGenerated") -}}
{{- $_ := set $root "mlPlatformGenerated" dict -}}
{{- end -}}
{{- $cache := get $root "mlPlatformGenerated" -}}
{{- $id := printf "%s/%s" .secret .key -}}
{{- if not (hasKey $cache $id) -}}
{{- $existing := lookup "v1" "Secret" $root.Release.Namespace .secret -}}
{{- $stored := "" -}}
{{- if and $existing $existing.data -}}
{{- $stored = get $existing.data .key | default "" | b64dec -}}
{{- end -}}
{{- $_ := set $cache $id (default (randAlphaNum (int .length)) $stored) -}}
{{- end -}}
{{- get $cache $id -}}
{{- end -}}
{{- end -}}

{{/* ---------------------------------------------------------------- object store */}}

{{- define "ml-platform.s3.provider" -}}
{{- ternary "external" "minio" .Values.externalS3.enabled -}}
{{- end -}}

{{/* Name the MinIO chart gives its objects (its own `minio.fullname` rule). */}}
{{- define "ml-platform.minio.fullname" -}}
{{- if .Values.minio.fullnameOverride -}}
{{- .Values.minio.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default "minio" .Values.minio.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* S3 endpoint URL, reachable from every namespace. */}}
{{- define "ml-platform.s3.endpoint" -}}
{{- if .Values.externalS3.enabled -}}
{{- .Values.externalS3.endpoint -}}
{{- else -}}
{{- printf "http://%s.%s.svc:%v" (include "ml-platform.minio.fullname" .) .Release.Namespace (default "9000" ((.Values.minio.service).port)) -}}
{{- end -}}
{{- end -}}

{{- define "ml-platform.s3.region" -}}
{{- if .Values.externalS3.enabled -}}
{{- .Values.externalS3.region -}}
{{- else -}}
us-east-1
{{- end -}}
{{- end -}}

{{/* Secret with the object-store credentials (same name in every namespace). */}}
{{- define "ml-platform.s3.secretName" -}}
{{- printf "%s-object-store" (include "ml-platform.fullname" .) -}}
{{- end -}}

{{- define "ml-platform.s3.accessKeyKey" -}}AWS_ACCESS_KEY_ID{{- end -}}
{{- define "ml-platform.s3.secretKeyKey" -}}AWS_SECRET_ACCESS_KEY{{- end -}}

{{- define "ml-platform.s3.accessKeyId" -}}
{{- include "ml-platform.generated" (dict "root" . "secret" (include "ml-platform.s3.secretName" .) "key" "AWS_ACCESS_KEY_ID" "value" .Values.objectStore.credentials.accessKeyId "length" 20) -}}
{{- end -}}

{{- define "ml-platform.s3.secretAccessKey" -}}
{{- include "ml-platform.generated" (dict "root" . "secret" (include "ml-platform.s3.secretName" .) "key" "AWS_SECRET_ACCESS_KEY" "value" .Values.objectStore.credentials.secretAccessKey "length" 40) -}}
{{- end -}}

{{/* Bucket of a role: include with (dict "root" $ "role" "xcom"). */}}
{{- define "ml-platform.s3.bucket" -}}
{{- $bucket := get .root.Values.objectStore.buckets .role -}}
{{- if not $bucket -}}
{{- fail (printf "objectStore.buckets has no %q role (roles: %s)" .role (keys .root.Values.objectStore.buckets | sortAlpha | join ", ")) -}}
{{- end -}}
{{- $bucket -}}
{{- end -}}

{{/* ---------------------------------------------------------------- MLflow */}}

{{- define "ml-platform.mlflow.serviceName" -}}
{{- default (printf "%s-mlflow" .Release.Name) .Values.mlflow.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "ml-platform.mlflow.trackingUri" -}}
{{- printf "http://%s.%s.svc:%v" (include "ml-platform.mlflow.serviceName" .) .Release.Namespace (default 5000 ((.Values.mlflow.server).port)) -}}
{{- end -}}

{{/* Secret with the MLflow backend-store URI (the subchart's templated value). */}}
{{- define "ml-platform.mlflow.backendStoreSecretName" -}}
{{- tpl .Values.mlflow.backendStore.postgresql.uriSecret.name . -}}
{{- end -}}

{{/* ---------------------------------------------------------------- database */}}

{{- define "ml-platform.database.enabled" -}}
{{- if or .Values.postgresql.enabled .Values.externalDatabase.enabled }}true{{ end -}}
{{- end -}}

{{- define "ml-platform.postgresql.fullname" -}}
{{- printf "%s-postgresql" (include "ml-platform.fullname" .) -}}
{{- end -}}

{{- define "ml-platform.database.host" -}}
{{- if .Values.externalDatabase.enabled -}}
{{- .Values.externalDatabase.host -}}
{{- else -}}
{{- printf "%s.%s.svc" (include "ml-platform.postgresql.fullname" .) .Release.Namespace -}}
{{- end -}}
{{- end -}}

{{- define "ml-platform.database.port" -}}
{{- ternary .Values.externalDatabase.port 5432 .Values.externalDatabase.enabled -}}
{{- end -}}

{{- define "ml-platform.database.sslmode" -}}
{{- ternary .Values.externalDatabase.sslmode "disable" .Values.externalDatabase.enabled -}}
{{- end -}}

{{- define "ml-platform.database.username" -}}
{{- ternary .Values.externalDatabase.username .Values.postgresql.username .Values.externalDatabase.enabled -}}
{{- end -}}

{{- define "ml-platform.database.password" -}}
{{- if .Values.externalDatabase.enabled -}}
{{- .Values.externalDatabase.password -}}
{{- else -}}
{{- include "ml-platform.generated" (dict "root" . "secret" (include "ml-platform.postgresql.fullname" .) "key" "password" "value" .Values.postgresql.password "length" 32) -}}
{{- end -}}
{{- end -}}

{{/* SQLAlchemy URI of one database: include with (dict "root" $ "database" NAME "driver" "postgresql+psycopg2"). */}}
{{- define "ml-platform.database.uri" -}}
{{- $root := .root -}}
{{- printf "%s://%s:%s@%s:%v/%s?sslmode=%s" .driver (include "ml-platform.database.username" $root | urlquery) (include "ml-platform.database.password" $root | urlquery) (include "ml-platform.database.host" $root) (include "ml-platform.database.port" $root) .database (include "ml-platform.database.sslmode" $root) -}}
{{- end -}}

{{/* ---------------------------------------------------------------- Airflow */}}

{{/* ServiceAccount of the KubernetesExecutor worker pods (where the KubernetesPodOperator runs). */}}
{{- define "ml-platform.airflow.workerServiceAccountName" -}}
{{- $sa := ((.Values.airflow.workers).kubernetes).serviceAccount | default dict -}}
{{- default (printf "%s-airflow-worker-kubernetes" .Release.Name) $sa.name -}}
{{- end -}}

{{/* ServiceAccounts bound to the pod-launcher Roles, as a JSON list: worker, triggerer, extras. */}}
{{- define "ml-platform.airflow.podLauncherServiceAccounts" -}}
{{- $names := list (include "ml-platform.airflow.workerServiceAccountName" .) -}}
{{- with (((.Values.airflow.triggerer).serviceAccount).name) -}}
{{- $names = append $names . -}}
{{- end -}}
{{- concat $names (.Values.podLauncherRbac.extraServiceAccounts | default list) | uniq | toJson -}}
{{- end -}}

{{- define "ml-platform.airflow.apiServerUrl" -}}
{{- printf "http://%s-api-server.%s.svc:%v" .Release.Name .Release.Namespace (default 8080 ((.Values.airflow.ports).apiServer)) -}}
{{- end -}}

{{/* ---------------------------------------------------------------- GPU pools */}}

{{/* Enabled GPU pools as a JSON object name -> pool (fromJson it). */}}
{{- define "ml-platform.gpu.enabledPools" -}}
{{- $pools := dict -}}
{{- range $name, $pool := .Values.gpuPools -}}
{{- if and $pool $pool.enabled -}}
{{- $_ := set $pools $name $pool -}}
{{- end -}}
{{- end -}}
{{- toJson $pools -}}
{{- end -}}

{{/*
Does a node affinity (+ nodeSelector) select nodes that carry these labels? Evaluates the
In / NotIn / Exists / DoesNotExist operators of each nodeSelectorTerm (terms are ORed,
expressions ANDed). include with (dict "labels" MAP "affinity" AFFINITY "nodeSelector" MAP);
prints "true" or nothing.
*/}}
{{- define "ml-platform.gpu.selectsLabels" -}}
{{- $labels := .labels -}}
{{- $ok := true -}}
{{- range $k, $v := (.nodeSelector | default dict) -}}
{{- if ne (toString (get $labels $k)) (toString $v) -}}{{- $ok = false -}}{{- end -}}
{{- end -}}
{{- $terms := list -}}
{{- with .affinity -}}{{- with .nodeAffinity -}}{{- with .requiredDuringSchedulingIgnoredDuringExecution -}}
{{- $terms = .nodeSelectorTerms | default list -}}
{{- end -}}{{- end -}}{{- end -}}
{{- if and $ok $terms -}}
{{- $anyTerm := false -}}
{{- range $term := $terms -}}
{{- $termOk := true -}}
{{- range $e := ($term.matchExpressions | default list) -}}
{{- $has := hasKey $labels $e.key -}}
{{- $val := toString (get $labels $e.key) -}}
{{- $vals := list -}}
{{- range ($e.values | default list) -}}{{- $vals = append $vals (toString .) -}}{{- end -}}
{{- if eq $e.operator "Exists" -}}{{- if not $has -}}{{- $termOk = false -}}{{- end -}}
{{- else if eq $e.operator "DoesNotExist" -}}{{- if $has -}}{{- $termOk = false -}}{{- end -}}
{{- else if eq $e.operator "In" -}}{{- if not (and $has (has $val $vals)) -}}{{- $termOk = false -}}{{- end -}}
{{- else if eq $e.operator "NotIn" -}}{{- if and $has (has $val $vals) -}}{{- $termOk = false -}}{{- end -}}
{{- else -}}{{- $termOk = false -}}
{{- end -}}
{{- end -}}
{{- if $termOk -}}{{- $anyTerm = true -}}{{- end -}}
{{- end -}}
{{- $ok = $anyTerm -}}
{{- end -}}
{{- if $ok -}}true{{- end -}}
{{- end -}}

{{/* Do these tolerations tolerate the taint? include with (dict "tolerations" LIST "taint" MAP). */}}
{{- define "ml-platform.gpu.tolerates" -}}
{{- $taint := .taint -}}
{{- $ok := false -}}
{{- range $t := (.tolerations | default list) -}}
{{- $keyOk := or (not $t.key) (eq $t.key $taint.key) -}}
{{- $effectOk := or (not $t.effect) (eq $t.effect $taint.effect) -}}
{{- $valueOk := or (eq (default "Equal" $t.operator) "Exists") (eq (toString $t.value) (toString $taint.value)) -}}
{{- if and $keyOk $effectOk $valueOk -}}{{- $ok = true -}}{{- end -}}
{{- end -}}
{{- if $ok -}}true{{- end -}}
{{- end -}}

{{/* ---------------------------------------------------------------- platform config */}}

{{/* The platform config of docs/CONTRACTS.md section 3, as a JSON document. */}}
{{- define "ml-platform.platformConfig" -}}
{{- $profiles := dict -}}
{{- range $name, $pool := (include "ml-platform.gpu.enabledPools" . | fromJson) -}}
{{- $_ := set $profiles $name (dict
    "nodeLabels" ($pool.nodeLabels | default dict)
    "gpuProducts" ($pool.gpuProducts | default list)
    "gpus" (int $pool.gpusPerPod)
    "cpu" (toString $pool.resources.cpu)
    "memory" (toString $pool.resources.memory)
    "priorityClassName" ($pool.priorityClassName | default nil)) -}}
{{- end -}}
{{- $_ := set $profiles "cpu" (dict
    "nodeLabels" (.Values.cpuProfile.nodeLabels | default dict)
    "gpuProducts" list
    "gpus" 0
    "cpu" (toString .Values.cpuProfile.resources.cpu)
    "memory" (toString .Values.cpuProfile.resources.memory)
    "priorityClassName" nil) -}}
{{- $config := dict
    "namespaces" (dict "training" .Values.namespaces.training "serving" .Values.namespaces.serving)
    "buckets" .Values.objectStore.buckets
    "model" (dict "name" .Values.model.name "experiment" .Values.model.experiment)
    "images" (dict "trainer" (include "ml-platform.trainerImage" .))
    "imagePullSecrets" (.Values.imagePullSecrets | default list)
    "sharedVolume" (dict "claimName" .Values.sharedVolume.claimName "mountPath" .Values.sharedVolume.mountPath)
    "endpoints" (dict
        "mlflowTrackingUri" (include "ml-platform.mlflow.trackingUri" .)
        "s3EndpointUrl" (include "ml-platform.s3.endpoint" .)
        "s3Region" (include "ml-platform.s3.region" .))
    "objectStoreSecret" (dict
        "name" (include "ml-platform.s3.secretName" .)
        "accessKeyKey" (include "ml-platform.s3.accessKeyKey" .)
        "secretKeyKey" (include "ml-platform.s3.secretKeyKey" .))
    "objectStoreConnectionId" .Values.airflowIntegration.connectionId
    "gpuTaint" (dict "key" .Values.gpuTaint.key "value" (toString .Values.gpuTaint.value) "effect" .Values.gpuTaint.effect)
    "profiles" $profiles -}}
{{- toPrettyJson $config -}}
{{- end -}}
