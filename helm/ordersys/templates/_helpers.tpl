{{/*
Expand the name of the chart.
*/}}
{{- define "ordersys.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Create a default fully qualified app name, truncated to leave room for the longest component
suffix ("-cdc-relay", "-migrate-cql").
If release name contains chart name it will be used as a full name.
*/}}
{{- define "ordersys.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 50 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Create chart name and version as used by the chart label.
*/}}
{{- define "ordersys.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Common labels
*/}}
{{- define "ordersys.labels" -}}
helm.sh/chart: {{ include "ordersys.chart" . }}
{{ include "ordersys.selectorLabels" . }}
{{- if .Chart.AppVersion }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: ordersys
{{- end }}

{{/*
Selector labels
*/}}
{{- define "ordersys.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ordersys.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Labels of one component. Call with (dict "root" $ "name" "command").
*/}}
{{- define "ordersys.componentLabels" -}}
{{ include "ordersys.labels" .root }}
app.kubernetes.io/component: {{ .name }}
{{- end }}

{{/*
Selector labels of one component. Call with (dict "root" $ "name" "command").
*/}}
{{- define "ordersys.componentSelectorLabels" -}}
{{ include "ordersys.selectorLabels" .root }}
app.kubernetes.io/component: {{ .name }}
{{- end }}

{{/*
Create the name of the service account to use
*/}}
{{- define "ordersys.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "ordersys.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The four long-running services: values key, resource/binary name, whether the gRPC API is public
(command, query) and whether it may have a HorizontalPodAutoscaler.
Use: range (include "ordersys.components" . | fromYamlArray)
*/}}
{{- define "ordersys.components" -}}
- {key: command, name: command, public: true, autoscale: true}
- {key: query, name: query, public: true, autoscale: true}
- {key: cdcRelay, name: cdc-relay, public: false, autoscale: false}
- {key: projector, name: projector, public: false, autoscale: false}
{{- end }}

{{/*
Image reference (digest wins over tag; tag defaults to the chart's appVersion).
*/}}
{{- define "ordersys.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
Name of the Secret holding the CQL credentials (existing, or created by the chart).
*/}}
{{- define "ordersys.cqlSecretName" -}}
{{- if .Values.cql.existingSecret }}
{{- .Values.cql.existingSecret }}
{{- else }}
{{- printf "%s-cql" (include "ordersys.fullname" .) }}
{{- end }}
{{- end }}

{{/*
Name of the Secret the migration hook reads: it runs before the release's own Secret exists, so
without an existing Secret the chart renders a hook copy of it.
*/}}
{{- define "ordersys.migrateSecretName" -}}
{{- if .Values.cql.existingSecret }}
{{- .Values.cql.existingSecret }}
{{- else }}
{{- printf "%s-migrate-cql" (include "ordersys.fullname" .) }}
{{- end }}
{{- end }}

{{/*
CQL credential env entries (from a Secret). Call with (dict "root" $ "secret" "<name>").
*/}}
{{- define "ordersys.cqlCredentialEnv" -}}
- name: ORDERSYS_CQL_USERNAME
  valueFrom:
    secretKeyRef:
      name: {{ .secret }}
      key: {{ .root.Values.cql.existingSecretUsernameKey }}
- name: ORDERSYS_CQL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ .secret }}
      key: {{ .root.Values.cql.existingSecretPasswordKey }}
{{- end }}

{{/*
Non-secret environment of one service, as ConfigMap data (docs/configuration.md: what each binary
reads; deploy/check/testdata/service-env.yaml: what it must be given). Call with (dict "root" $ "c" <component>).
*/}}
{{- define "ordersys.configEnv" -}}
{{- $v := .root.Values }}
{{- $s := index $v .c.key }}
ORDERSYS_GRPC_ADDR: {{ printf "0.0.0.0:%v" $s.grpcPort | quote }}
ORDERSYS_METRICS_ADDR: {{ printf "0.0.0.0:%v" $s.metricsPort | quote }}
ORDERSYS_CQL_HOSTS: {{ join "," $v.cql.hosts | quote }}
ORDERSYS_CQL_KEYSPACE: {{ $v.cql.keyspace | quote }}
ORDERSYS_CQL_LOCAL_DC: {{ $v.cql.localDC | quote }}
ORDERSYS_CQL_CONSISTENCY: {{ $v.cql.consistency | quote }}
ORDERSYS_CQL_SERIAL_CONSISTENCY: {{ $v.cql.serialConsistency | quote }}
{{ include "ordersys.cqlTLSEnv" .root }}
{{- with (include "ordersys.grpcSecurityEnv" .root) }}
{{ . }}
{{- end }}
ORDERSYS_OTLP_ENDPOINT: {{ $v.tracing.otlpEndpoint | quote }}
ORDERSYS_TRACE_SAMPLE_RATIO: {{ $v.tracing.sampleRatio | toString | quote }}
{{- with $v.tracing.tls }}
{{- if .existingSecret }}
OTEL_EXPORTER_OTLP_CERTIFICATE: "/etc/ordersys/otlp-tls/ca.crt"
{{- if .clientCertificate }}
OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE: "/etc/ordersys/otlp-tls/tls.crt"
OTEL_EXPORTER_OTLP_CLIENT_KEY: "/etc/ordersys/otlp-tls/tls.key"
{{- end }}
{{- end }}
{{- end }}
ORDERSYS_LOG_LEVEL: {{ $v.logLevel | quote }}
ORDERSYS_SHUTDOWN_TIMEOUT: {{ $v.shutdownTimeout | quote }}
{{- if and $v.pii.kekSecret (has .c.name (list "command" "projector" "query")) }}
ORDERSYS_PII_KEK_FILE: {{ printf "/etc/ordersys/pii/%s" $v.pii.kekKey | quote }}
{{- end }}
{{- if eq .c.name "command" }}
ORDERSYS_SNAPSHOT_EVERY: {{ $s.snapshotEvery | toString | quote }}
ORDERSYS_COMMAND_MAX_RETRIES: {{ $s.maxRetries | toString | quote }}
ORDERSYS_DEDUP_TTL: {{ $s.dedupTTL | quote }}
{{- end }}
{{- if has .c.name (list "command" "cdc-relay" "projector") }}
ORDERSYS_ORDER_TOPIC: {{ $v.kafka.topics.order | quote }}
ORDERSYS_CUSTOMER_TOPIC: {{ $v.kafka.topics.customer | quote }}
{{- end }}
{{- if or (eq .c.name "cdc-relay") (eq .c.name "projector") }}
ORDERSYS_KAFKA_BROKERS: {{ join "," $v.kafka.brokers | quote }}
ORDERSYS_KAFKA_PARTITIONS: {{ $v.kafka.partitions | int64 | toString | quote }}
ORDERSYS_KAFKA_REPLICATION_FACTOR: {{ $v.kafka.replicationFactor | int64 | toString | quote }}
ORDERSYS_KAFKA_RETENTION_MS: {{ $v.kafka.retentionMs | int64 | toString | quote }}
{{- include "ordersys.kafkaSecurityEnv" .root }}
{{- end }}
{{- if eq .c.name "cdc-relay" }}
ORDERSYS_RELAY_SOURCE: {{ $s.source | quote }}
ORDERSYS_RELAY_POLL_INTERVAL: {{ $s.pollInterval | quote }}
ORDERSYS_RELAY_SAFETY_WINDOW: {{ $s.safetyWindow | quote }}
{{- end }}
{{- if eq .c.name "projector" }}
ORDERSYS_PROJECTOR_GROUP: {{ $s.consumerGroup | quote }}
ORDERSYS_PROJECTOR_RETIRE_GRACE: {{ $s.retireGrace | quote }}
{{- end }}
{{- end }}

{{/*
Cross-field checks the JSON schema cannot express.
*/}}
{{- define "ordersys.validate" -}}
{{- if and (eq .Values.cdcRelay.source "scylla-cdc") (ne .Values.cql.profile "scylla") }}
{{- fail "cdcRelay.source=scylla-cdc needs cql.profile=scylla (the CDC log tables exist only in the scylla schema)" }}
{{- end }}
{{- if and .Values.cql.password .Values.cql.existingSecret }}
{{- fail "set either cql.password or cql.existingSecret, not both" }}
{{- end }}
{{- if and .Values.kafka.sasl.mechanism (not (and .Values.kafka.sasl.username .Values.kafka.sasl.existingSecret)) }}
{{- fail "kafka.sasl.mechanism needs kafka.sasl.username and kafka.sasl.existingSecret (the Secret holding the password)" }}
{{- end }}
{{- if and .Values.kafka.tls.clientCertificate (not (or .Values.kafka.tls.existingSecret .Values.kafka.tls.certManager.enabled)) }}
{{- fail "kafka.tls.clientCertificate needs kafka.tls.existingSecret (tls.crt, tls.key) or kafka.tls.certManager.enabled" }}
{{- end }}
{{- range $store := list "cql" "kafka" }}
{{- $t := (index $.Values $store).tls }}
{{- if and $t.certManager.enabled $t.existingSecret }}
{{- fail (printf "set either %s.tls.existingSecret (a Secret you provide) or %s.tls.certManager.enabled (a client certificate cert-manager issues), not both" $store $store) }}
{{- end }}
{{- if and $t.certManager.enabled (not $t.certManager.issuerRef.name) }}
{{- fail (printf "%s.tls.certManager.enabled needs %s.tls.certManager.issuerRef.name: the Issuer (or ClusterIssuer) that signs the client certificate" $store $store) }}
{{- end }}
{{- end }}
{{- if and .Values.tracing.tls.existingSecret (not (hasPrefix "https://" .Values.tracing.otlpEndpoint)) }}
{{- fail (printf "tracing.tls.existingSecret needs an https:// tracing.otlpEndpoint (got %q): the exporter speaks TLS only to https:// endpoints" .Values.tracing.otlpEndpoint) }}
{{- end }}
{{- if and .Values.tracing.tls.clientCertificate (not .Values.tracing.tls.existingSecret) }}
{{- fail "tracing.tls.clientCertificate needs tracing.tls.existingSecret (tls.crt, tls.key)" }}
{{- end }}
{{- $cm := .Values.grpc.tls.certManager }}
{{- if and .Values.grpc.tls.existingSecret $cm.enabled }}
{{- fail "set either grpc.tls.existingSecret (a Secret you provide) or grpc.tls.certManager.enabled (a Certificate cert-manager issues), not both" }}
{{- end }}
{{- if and $cm.enabled (not $cm.issuerRef.name) }}
{{- fail "grpc.tls.certManager.enabled needs grpc.tls.certManager.issuerRef.name: the Issuer (or, with issuerRef.kind=ClusterIssuer, the ClusterIssuer) that signs the services' certificate" }}
{{- end }}
{{- if and $cm.enabled (eq $cm.issuerRef.group "cert-manager.io") (not (has $cm.issuerRef.kind (list "Issuer" "ClusterIssuer"))) }}
{{- fail (printf "grpc.tls.certManager.issuerRef.kind=%s: cert-manager.io issuers are Issuer or ClusterIssuer (set issuerRef.group for an external issuer)" $cm.issuerRef.kind) }}
{{- end }}
{{- if and .Values.grpc.tls.clientAuth (not (include "ordersys.grpcTLSSecret" .)) }}
{{- fail "grpc.tls.clientAuth needs grpc.tls.existingSecret or grpc.tls.certManager.enabled (the server's certificate and the client CA)" }}
{{- end }}
{{- end }}

{{/*
The TLS client settings of a store as NAME: value lines: the files of its tls.existingSecret,
mounted by ordersys.tlsSecretVolume(Mount) at /etc/ordersys/<name> (ca.crt, and tls.crt / tls.key
when tls.clientCertificate); empty values (plaintext) without a Secret. Call with (dict "tls"
<values> "prefix" "ORDERSYS_CQL" "name" "cql-tls").
*/}}
{{- define "ordersys.tlsClientEnv" -}}
{{- $t := .tls }}
{{- $dir := printf "/etc/ordersys/%s" .name }}
{{- $on := ne (default "" $t.existingSecret) "" }}
{{ .prefix }}_TLS_ENABLED: {{ or $on $t.enabled | toString | quote }}
{{ .prefix }}_TLS_CA_FILE: {{ ternary (printf "%s/ca.crt" $dir) "" $on | quote }}
{{ .prefix }}_TLS_CERT_FILE: {{ ternary (printf "%s/tls.crt" $dir) "" (and $on $t.clientCertificate) | quote }}
{{ .prefix }}_TLS_KEY_FILE: {{ ternary (printf "%s/tls.key" $dir) "" (and $on $t.clientCertificate) | quote }}
{{ .prefix }}_TLS_SKIP_HOST_VERIFICATION: {{ $t.skipHostVerification | toString | quote }}
{{- end }}

{{/* The volume of a tls.existingSecret (nothing without one). Call with (dict "tls" <values> "name" <volume>). */}}
{{- define "ordersys.tlsSecretVolume" -}}
{{- if .tls.existingSecret }}
- name: {{ .name }}
  secret:
    secretName: {{ .tls.existingSecret }}
{{- end }}
{{- end }}

{{/* Its mount at /etc/ordersys/<name> (nothing without a Secret). */}}
{{- define "ordersys.tlsSecretVolumeMount" -}}
{{- if .tls.existingSecret }}
- name: {{ .name }}
  mountPath: /etc/ordersys/{{ .name }}
  readOnly: true
{{- end }}
{{- end }}

{{/*
A store's effective TLS values (cql.tls or kafka.tls): with tls.certManager.enabled, existingSecret
is the Secret cert-manager writes (ordersys.clientCertSecret) and clientCertificate is on. Call
with (dict "root" $ "store" "cql").
*/}}
{{- define "ordersys.storeTLS" -}}
{{- $t := deepCopy (index .root.Values .store).tls }}
{{- if $t.certManager.enabled }}
{{- $_ := set $t "existingSecret" (include "ordersys.clientCertSecret" .) }}
{{- $_ := set $t "clientCertificate" true }}
{{- end }}
{{- toYaml $t }}
{{- end }}

{{/* The Secret of a store's cert-manager client certificate. Call with (dict "root" $ "store" "cql"). */}}
{{- define "ordersys.clientCertSecret" -}}
{{- default (printf "%s-%s-client-tls" (include "ordersys.fullname" .root) .store) (index .root.Values .store).tls.certManager.secretName }}
{{- end }}

{{/* The OTLP collector's CA (tracing.tls), mounted at /etc/ordersys/otlp-tls. */}}
{{- define "ordersys.otlpTLS" -}}
{{- toYaml (dict "tls" .Values.tracing.tls "name" "otlp-tls") }}
{{- end }}

{{/* The CQL TLS settings (cql.tls), mounted at /etc/ordersys/cql-tls. */}}
{{- define "ordersys.cqlTLS" -}}
{{- toYaml (dict "tls" (include "ordersys.storeTLS" (dict "root" . "store" "cql") | fromYaml) "prefix" "ORDERSYS_CQL" "name" "cql-tls") }}
{{- end }}
{{- define "ordersys.cqlTLSEnv" -}}
{{- include "ordersys.tlsClientEnv" (include "ordersys.cqlTLS" . | fromYaml) }}
{{- end }}
{{- define "ordersys.cqlTLSVolume" -}}
{{- include "ordersys.tlsSecretVolume" (include "ordersys.cqlTLS" . | fromYaml) }}
{{- end }}
{{- define "ordersys.cqlTLSVolumeMount" -}}
{{- include "ordersys.tlsSecretVolumeMount" (include "ordersys.cqlTLS" . | fromYaml) }}
{{- end }}

{{/*
The Kafka security of the relay and the projector (kafka.tls, mounted at
/etc/ordersys/kafka-tls, and kafka.sasl) as NAME: value lines; the SASL password comes from
kafka.sasl.existingSecret (ordersys.kafkaPasswordEnv).
*/}}
{{- define "ordersys.kafkaTLS" -}}
{{- toYaml (dict "tls" (include "ordersys.storeTLS" (dict "root" . "store" "kafka") | fromYaml) "prefix" "ORDERSYS_KAFKA" "name" "kafka-tls") }}
{{- end }}
{{- define "ordersys.kafkaSecurityEnv" -}}
{{- include "ordersys.tlsClientEnv" (include "ordersys.kafkaTLS" . | fromYaml) }}
ORDERSYS_KAFKA_SASL_MECHANISM: {{ .Values.kafka.sasl.mechanism | quote }}
ORDERSYS_KAFKA_SASL_USERNAME: {{ .Values.kafka.sasl.username | quote }}
{{- end }}
{{- define "ordersys.kafkaPasswordEnv" -}}
{{- if .Values.kafka.sasl.mechanism }}
- name: ORDERSYS_KAFKA_SASL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ .Values.kafka.sasl.existingSecret }}
      key: {{ .Values.kafka.sasl.passwordKey }}
{{- end }}
{{- end }}
{{- define "ordersys.kafkaTLSVolume" -}}
{{- include "ordersys.tlsSecretVolume" (include "ordersys.kafkaTLS" . | fromYaml) }}
{{- end }}
{{- define "ordersys.kafkaTLSVolumeMount" -}}
{{- include "ordersys.tlsSecretVolumeMount" (include "ordersys.kafkaTLS" . | fromYaml) }}
{{- end }}

{{/*
The API a ServiceMonitor needs, as .Capabilities.APIVersions lists it (group/version/Kind).
*/}}
{{- define "ordersys.serviceMonitor.api" -}}
monitoring.coreos.com/v1/ServiceMonitor
{{- end }}

{{/*
"true" when the ServiceMonitor is rendered: serviceMonitor.enabled, and the cluster serves
monitoring.coreos.com/v1 ServiceMonitor or serviceMonitor.force is set (helm template without a
cluster, GitOps tools that render offline: pass --api-versions monitoring.coreos.com/v1/ServiceMonitor
or set force). Empty otherwise.
*/}}
{{- define "ordersys.serviceMonitor.render" -}}
{{- if and .Values.serviceMonitor.enabled (or .Values.serviceMonitor.force (.Capabilities.APIVersions.Has (include "ordersys.serviceMonitor.api" .))) -}}
true
{{- end -}}
{{- end }}

{{/*
The API a PrometheusRule needs, as .Capabilities.APIVersions lists it.
*/}}
{{- define "ordersys.prometheusRule.api" -}}
monitoring.coreos.com/v1/PrometheusRule
{{- end }}

{{/*
"true" when the PrometheusRule is rendered: prometheusRule.enabled, and the cluster serves
monitoring.coreos.com/v1 PrometheusRule or prometheusRule.force is set. Empty otherwise.
*/}}
{{- define "ordersys.prometheusRule.render" -}}
{{- if and .Values.prometheusRule.enabled (or .Values.prometheusRule.force (.Capabilities.APIVersions.Has (include "ordersys.prometheusRule.api" .))) -}}
true
{{- end -}}
{{- end }}

{{/*
Name of the Secret with the gRPC server's TLS files (tls.crt, tls.key, ca.crt):
grpc.tls.existingSecret, or the Secret cert-manager writes for the chart's Certificate
(grpc.tls.certManager.secretName, default <fullname>-grpc-tls). Empty: plaintext gRPC.
*/}}
{{- define "ordersys.grpcTLSSecret" -}}
{{- $t := .Values.grpc.tls }}
{{- if $t.existingSecret }}
{{- $t.existingSecret }}
{{- else if $t.certManager.enabled }}
{{- default (printf "%s-grpc-tls" (include "ordersys.fullname" .)) $t.certManager.secretName }}
{{- end }}
{{- end }}

{{/*
DNS names of the gRPC certificate: every component's Service as clients dial it
(<fullname>-<component>, .<ns>, .<ns>.svc, .<ns>.svc.<clusterDomain>), then extraDnsNames.
*/}}
{{- define "ordersys.grpcDNSNames" -}}
{{- $cm := .Values.grpc.tls.certManager }}
{{- $ns := .Release.Namespace }}
{{- range $c := (include "ordersys.components" . | fromYamlArray) }}
{{- $svc := printf "%s-%s" (include "ordersys.fullname" $) $c.name }}
- {{ $svc }}
- {{ $svc }}.{{ $ns }}
- {{ $svc }}.{{ $ns }}.svc
- {{ $svc }}.{{ $ns }}.svc.{{ $cm.clusterDomain }}
{{- end }}
{{- range $cm.extraDnsNames }}
- {{ . | quote }}
{{- end }}
{{- end }}

{{/*
The gRPC server's TLS and token settings as NAME: value lines (nothing when grpc.tls and
grpc.auth name no Secret): the files of the gRPC TLS Secret (ordersys.grpcTLSSecret) mounted at
/etc/ordersys/grpc-tls (tls.crt, tls.key; ca.crt for client certificates with
grpc.tls.clientAuth) and the jwks.json of grpc.auth.jwksSecret at /etc/ordersys/auth.
*/}}
{{- define "ordersys.grpcSecurityEnv" -}}
{{- $t := .Values.grpc.tls }}
{{- $a := .Values.grpc.auth }}
{{- if include "ordersys.grpcTLSSecret" . }}
ORDERSYS_GRPC_TLS_CERT_FILE: "/etc/ordersys/grpc-tls/tls.crt"
ORDERSYS_GRPC_TLS_KEY_FILE: "/etc/ordersys/grpc-tls/tls.key"
{{- if $t.clientAuth }}
ORDERSYS_GRPC_TLS_CLIENT_CA_FILE: "/etc/ordersys/grpc-tls/ca.crt"
{{- end }}
{{- end }}
{{- if $a.jwksSecret }}
ORDERSYS_AUTH_JWKS_FILE: "/etc/ordersys/auth/jwks.json"
ORDERSYS_AUTH_ISSUER: {{ $a.issuer | quote }}
ORDERSYS_AUTH_AUDIENCE: {{ $a.audience | quote }}
{{- end }}
{{- end }}

{{/* The volumes of the gRPC TLS Secret and grpc.auth.jwksSecret (nothing without them). */}}
{{- define "ordersys.grpcSecurityVolumes" -}}
{{- with (include "ordersys.grpcTLSSecret" .) }}
- name: grpc-tls
  secret:
    secretName: {{ . }}
{{- end }}
{{- with .Values.grpc.auth.jwksSecret }}
- name: grpc-auth
  secret:
    secretName: {{ . }}
{{- end }}
{{- end }}

{{/* Their mounts at /etc/ordersys/grpc-tls and /etc/ordersys/auth. */}}
{{- define "ordersys.grpcSecurityVolumeMounts" -}}
{{- if include "ordersys.grpcTLSSecret" . }}
- name: grpc-tls
  mountPath: /etc/ordersys/grpc-tls
  readOnly: true
{{- end }}
{{- if .Values.grpc.auth.jwksSecret }}
- name: grpc-auth
  mountPath: /etc/ordersys/auth
  readOnly: true
{{- end }}
{{- end }}

{{/* Whether component (name) reads personal data: the KEK Secret is mounted there. Call with (dict "root" $ "name" NAME). */}}
{{- define "ordersys.readsPII" -}}
{{- if and .root.Values.pii.kekSecret (has .name (list "command" "projector" "query")) }}true{{ end }}
{{- end }}
