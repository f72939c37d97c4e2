{{/*
Helpers of the ml-platform umbrella chart. Every define is prefixed `ml-platform.` so the
subcharts' helpers (airflow, minio, nvidia-device-plugin, mlflow) can never collide.

Connection facts follow the Bitnami pattern: one small helper per fact (endpoint, region,
secret name, bucket, tracking URI, database host …) that knows whether the bundled service or
the external one is in use. Templates ask the helper and never look at `minio.enabled` or
`externalS3.enabled` themselves.
*/}}

{{/* ---------------------------------------------------------------- names and labels */}}

{{/* Prefix of every object name: the release name (as the official Airflow chart does) or fullnameOverride. */}}
{{- define "ml-platform.fullname" -}}
{{- default .Release.Name .Values.fullnameOverride | trunc 50 | trimSuffix "-" -}}
{{- end -}}

{{/* `app.kubernetes.io/name` of this chart's objects. */}}
{{- define "ml-platform.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels: include with (dict "root" $ "component" "model-server"). */}}
{{- define "ml-platform.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ml-platform.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "ml-platform.labels" -}}
{{ include "ml-platform.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: ml-platform
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
{{- with .root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Pod template metadata: labels and annotations (podAnnotations + extra). include with
(dict "root" $ "component" NAME "annotations" MAP). */}}
{{- define "ml-platform.podMetadata" -}}
labels:
  {{- include "ml-platform.labels" . | nindent 2 }}
{{- with (merge (dict) (.annotations | default dict) (.root.Values.podAnnotations | default dict)) }}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* The namespaces this chart writes to, without duplicates (release, training, serving). */}}
{{- define "ml-platform.workloadNamespaces" -}}
{{- list .Release.Namespace .Values.namespaces.training .Values.namespaces.serving | uniq | toJson -}}
{{- end -}}

{{/* ---------------------------------------------------------------- images */}}

{{/*
`repository:tag` of an image map, with global.imageRegistry replacing the registry part of the
repository (the first path element when it names a host). include with (dict "root" $ "image" MAP).
*/}}
{{- define "ml-platform.image" -}}
{{- $repository := .image.repository -}}
{{- with ((.root.Values.global).imageRegistry) -}}
{{- $parts := splitList "/" $repository -}}
{{- $first := first $parts -}}
{{- if and (gt (len $parts) 1) (or (contains "." $first) (contains ":" $first) (eq $first "localhost")) -}}
{{- $repository = join "/" (rest $parts) -}}
{{- end -}}
{{- $repository = printf "%s/%s" (trimSuffix "/" .) $repository -}}
{{- end -}}
{{- printf "%s:%s" $repository (toString .image.tag) -}}
{{- end -}}

{{- define "ml-platform.trainerImage" -}}
{{- include "ml-platform.image" (dict "root" . "image" .Values.images.trainer) -}}
{{- end -}}

{{- define "ml-platform.platformToolsImage" -}}
{{- include "ml-platform.image" (dict "root" . "image" .Values.images.platformTools) -}}
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

{{/* Pod Security Admission labels of a namespace: include with the level. */}}
{{- define "ml-platform.podSecurityLabels" -}}
pod-security.kubernetes.io/enforce: {{ . }}
pod-security.kubernetes.io/warn: {{ . }}
pod-security.kubernetes.io/audit: {{ . }}
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

{{/* "true" when a cluster answers (helm install/upgrade, --dry-run=server); "" for helm template. */}}
{{- define "ml-platform.clusterReachable" -}}
{{- if lookup "v1" "Namespace" "" "kube-system" -}}true{{- end -}}
{{- end -}}

{{/*
A credential generated once per release and then kept:
  1. the explicit value, when given;
  2. the value already stored in the Secret (upgrades: `lookup` reads the cluster);
  3. derived from generatedSecrets.seed, when set (stable across `helm template` runs);
  4. with a cluster, a random string (then kept by 2.);
  5. without a cluster and without a seed: fail, naming the fix.
A generated (not stored) value is base64-encoded when "base64" is true (Airflow's fernet key).
Memoised per render, so every template that asks gets the same value.
include with (dict "root" $ "secret" NAME "key" KEY "value" EXPLICIT "length" N ["base64" true])
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
{{- $value := "" -}}
{{- $existing := lookup "v1" "Secret" $root.Release.Namespace .secret -}}
{{- if and $existing $existing.data -}}
{{- $value = get $existing.data .key | default "" | b64dec -}}
{{- end -}}
{{- if not $value -}}
{{- $seed := $root.Values.generatedSecrets.seed -}}
{{- if $seed -}}
{{- $material := printf "%s|%s|%s|%s" $seed $root.Release.Namespace .secret .key -}}
{{- $value = printf "%s%s" (sha256sum (printf "1|%s" $material)) (sha256sum (printf "2|%s" $material)) | trunc (int .length) -}}
{{- else if include "ml-platform.clusterReachable" $root -}}
{{- $value = randAlphaNum (int .length) -}}
{{- else -}}
{{- fail (printf "\n\nml-platform: no cluster to read Secret %s from (helm template, a GitOps renderer, helm lint): a generated credential would change on every render. Set generatedSecrets.seed to a long random string you keep secret (e.g. `openssl rand -hex 32`; the same seed renders the same credentials), or provide the Secret yourself (see docs/chart.md, \"Secrets\").\n" .secret) -}}
{{- end -}}
{{- if .base64 -}}
{{- $value = b64enc $value -}}
{{- end -}}
{{- end -}}
{{- $_ := set $cache $id $value -}}
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

{{/* "true" when pods use static keys (MinIO, or external S3 with auth accessKeys). */}}
{{- define "ml-platform.s3.staticKeys" -}}
{{- if or (not .Values.externalS3.enabled) (eq .Values.externalS3.auth "accessKeys") -}}true{{- end -}}
{{- end -}}

{{/* Secret with the object-store credentials (same name in every namespace); "" without static keys. */}}
{{- define "ml-platform.s3.secretName" -}}
{{- if include "ml-platform.s3.staticKeys" . -}}
{{- default (printf "%s-object-store" (include "ml-platform.fullname" .)) .Values.objectStore.credentials.existingSecret -}}
{{- end -}}
{{- end -}}

{{/* "true" when this chart renders the object-store Secret. */}}
{{- define "ml-platform.s3.renderSecret" -}}
{{- if and (include "ml-platform.s3.staticKeys" .) (not .Values.objectStore.credentials.existingSecret) -}}true{{- end -}}
{{- end -}}

{{- define "ml-platform.s3.accessKeyKey" -}}AWS_ACCESS_KEY_ID{{- end -}}
{{- define "ml-platform.s3.secretKeyKey" -}}AWS_SECRET_ACCESS_KEY{{- end -}}

{{/* The minio.users entry of the platform user (its secret key is the object-store Secret's), as JSON; {} when none. */}}
{{- define "ml-platform.minio.platformUser" -}}
{{- $found := dict -}}
{{- range (.Values.minio.users | default list) -}}
{{- if and .existingSecret (eq (tpl (toString .existingSecret) $) (include "ml-platform.s3.secretName" $)) (eq (toString .existingSecretKey) (include "ml-platform.s3.secretKeyKey" $)) -}}
{{- $found = . -}}
{{- end -}}
{{- end -}}
{{- toJson $found -}}
{{- end -}}

{{- define "ml-platform.s3.accessKeyId" -}}
{{- if .Values.minio.enabled -}}
{{- tpl (toString ((include "ml-platform.minio.platformUser" . | fromJson).accessKey)) . -}}
{{- else -}}
{{- .Values.objectStore.credentials.accessKeyId -}}
{{- end -}}
{{- end -}}

{{- define "ml-platform.s3.secretAccessKey" -}}
{{- include "ml-platform.generated" (dict "root" . "secret" (include "ml-platform.s3.secretName" .) "key" (include "ml-platform.s3.secretKeyKey" .) "value" .Values.objectStore.credentials.secretAccessKey "length" 40) -}}
{{- end -}}

{{/* MinIO's root credentials (Secret minio.existingSecret): include with (dict "root" $ "key" "rootUser"|"rootPassword"). */}}
{{- define "ml-platform.minio.rootCredential" -}}
{{- include "ml-platform.generated" (dict "root" .root "secret" .root.Values.minio.existingSecret "key" .key "value" "" "length" (ternary 16 40 (eq .key "rootUser"))) -}}
{{- end -}}

{{/* Bucket ARNs of the platform (what the MinIO policy must grant): include with (dict "root" $ "suffix" "" | "/*"). */}}
{{- define "ml-platform.s3.bucketArns" -}}
{{- $arns := list -}}
{{- range $role := keys .root.Values.objectStore.buckets | sortAlpha -}}
{{- $arns = append $arns (printf "arn:aws:s3:::%s%s" (get $.root.Values.objectStore.buckets $role) $.suffix) -}}
{{- end -}}
{{- toJson $arns -}}
{{- end -}}

{{/* env / envFrom of a container that talks to the object store with the platform's credentials. */}}
{{- define "ml-platform.objectStoreEnv" -}}
env:
  - name: AWS_ENDPOINT_URL
    value: {{ include "ml-platform.s3.endpoint" . | quote }}
  - name: AWS_DEFAULT_REGION
    value: {{ include "ml-platform.s3.region" . | quote }}
{{- with include "ml-platform.s3.secretName" . }}
envFrom:
  - secretRef:
      name: {{ . }}
{{- end }}
{{- end -}}

{{- define "ml-platform.helmTestResources" -}}
resources:
  requests:
    cpu: 10m
    memory: 64Mi
  limits:
    cpu: 200m
    memory: 128Mi
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

{{/* "true" when MLflow's basic auth is on: mlflow.auth.enabled true, or auto with the Ingress on. */}}
{{- define "ml-platform.mlflow.authEnabled" -}}
{{- $auth := .Values.mlflow.auth | default dict -}}
{{- if and .Values.mlflow.enabled (or (eq (toString $auth.enabled) "true") (and (eq (toString $auth.enabled) "auto") ((.Values.mlflow.ingress).enabled))) -}}true{{- end -}}
{{- end -}}

{{/* Secret with MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD ("" while auth is off). */}}
{{- define "ml-platform.mlflow.authSecretName" -}}
{{- if include "ml-platform.mlflow.authEnabled" . -}}
{{- tpl .Values.mlflow.auth.credentialsSecret . -}}
{{- end -}}
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

{{/* Secret with PostgreSQL's password (key `password`): postgresql.existingSecret or this chart's. */}}
{{- define "ml-platform.postgresql.secretName" -}}
{{- default (include "ml-platform.postgresql.fullname" .) .Values.postgresql.existingSecret -}}
{{- end -}}

{{- define "ml-platform.database.password" -}}
{{- if .Values.externalDatabase.enabled -}}
{{- .Values.externalDatabase.password -}}
{{- else if .Values.postgresql.existingSecret -}}
{{- $secret := lookup "v1" "Secret" .Release.Namespace .Values.postgresql.existingSecret -}}
{{- if not (and $secret $secret.data (hasKey $secret.data "password")) -}}
{{- fail (printf "\n\nml-platform: postgresql.existingSecret %s (key password) cannot be read%s, so the database URIs cannot be rendered. Create it first, or set database.createSecrets=false and provide the URI Secrets too.\n" .Values.postgresql.existingSecret (ternary "" " without a cluster (helm template)" (eq (include "ml-platform.clusterReachable" .) "true"))) -}}
{{- end -}}
{{- get $secret.data "password" | b64dec -}}
{{- else -}}
{{- include "ml-platform.generated" (dict "root" . "secret" (include "ml-platform.postgresql.fullname" .) "key" "password" "value" .Values.postgresql.password "length" 32) -}}
{{- end -}}
{{- end -}}

{{/* libpq query parameters: sslmode, and sslrootcert when verifying the server certificate. */}}
{{- define "ml-platform.database.query" -}}
{{- printf "sslmode=%s" (include "ml-platform.database.sslmode" .) -}}
{{- if and .Values.externalDatabase.enabled .Values.externalDatabase.sslRootCert -}}
{{- printf "&sslrootcert=%s" .Values.externalDatabase.sslRootCert -}}
{{- end -}}
{{- end -}}

{{/* SQLAlchemy URI of one database: include with (dict "root" $ "database" NAME "driver" "postgresql+psycopg2"). */}}
{{- define "ml-platform.database.uri" -}}
{{- $root := .root -}}
{{- printf "%s://%s:%s@%s:%v/%s?%s" .driver (include "ml-platform.database.username" $root | urlquery) (include "ml-platform.database.password" $root | urlquery) (include "ml-platform.database.host" $root) (include "ml-platform.database.port" $root) .database (include "ml-platform.database.query" $root) -}}
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

{{/* ServiceAccount of the pipeline pods (training, serving) and of the object-store hook and tests. */}}
{{- define "ml-platform.pipelineServiceAccountName" -}}
{{- printf "%s-pipeline" (include "ml-platform.fullname" .) -}}
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
{{- $objectStoreSecret := dict -}}
{{- if include "ml-platform.s3.staticKeys" . -}}
{{- $objectStoreSecret = dict
    "name" (include "ml-platform.s3.secretName" .)
    "accessKeyKey" (include "ml-platform.s3.accessKeyKey" .)
    "secretKeyKey" (include "ml-platform.s3.secretKeyKey" .) -}}
{{- end -}}
{{- $mlflowAuthSecret := dict -}}
{{- with include "ml-platform.mlflow.authSecretName" . -}}
{{- $mlflowAuthSecret = dict "name" . "usernameKey" "MLFLOW_TRACKING_USERNAME" "passwordKey" "MLFLOW_TRACKING_PASSWORD" -}}
{{- end -}}
{{- $sharedVolume := dict -}}
{{- if .Values.sharedVolume.enabled -}}
{{- $sharedVolume = dict "claimName" .Values.sharedVolume.claimName "mountPath" .Values.sharedVolume.mountPath -}}
{{- end -}}
{{- $config := dict
    "namespaces" (dict "training" .Values.namespaces.training "serving" .Values.namespaces.serving)
    "buckets" .Values.objectStore.buckets
    "model" (dict "name" .Values.model.name "experiment" .Values.model.experiment)
    "images" (dict "trainer" (include "ml-platform.trainerImage" .))
    "imagePullSecrets" (.Values.imagePullSecrets | default list)
    "serviceAccountName" (include "ml-platform.pipelineServiceAccountName" .)
    "sharedVolume" ($sharedVolume | default nil)
    "endpoints" (dict
        "mlflowTrackingUri" (include "ml-platform.mlflow.trackingUri" .)
        "s3EndpointUrl" (include "ml-platform.s3.endpoint" .)
        "s3Region" (include "ml-platform.s3.region" .))
    "objectStoreSecret" ($objectStoreSecret | default nil)
    "mlflowAuthSecret" ($mlflowAuthSecret | default nil)
    "objectStoreConnectionId" .Values.airflowIntegration.connectionId
    "gpuTaint" (dict "key" .Values.gpuTaint.key "value" (toString .Values.gpuTaint.value) "effect" .Values.gpuTaint.effect)
    "profiles" $profiles -}}
{{- toPrettyJson $config -}}
{{- end -}}
