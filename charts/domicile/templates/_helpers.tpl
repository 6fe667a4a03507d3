{{- define "domicile.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "domicile.serviceAccountName" -}}
{{- default (include "domicile.fullname" .) .Values.serviceAccount.name -}}
{{- end -}}

{{- define "domicile.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "domicile.labels" -}}
{{ include "domicile.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* The operator's image: by digest when one is given, else by tag (the chart's appVersion by default). */}}
{{- define "domicile.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{- define "domicile.operatorUser" -}}
{{- printf "system:serviceaccount:%s:%s" .Release.Namespace (include "domicile.serviceAccountName" .) -}}
{{- end -}}

{{/* The binding of one admission policy: name, the policy's values, and an optional paramRef. */}}
{{- define "domicile.binding" -}}
{{- $actions := .values.validationActions -}}
{{- if not $actions -}}
{{- fail (printf "admission.%s.validationActions: give at least one of Deny, Warn, Audit" .guard) -}}
{{- end -}}
{{- range $actions -}}
{{- if not (has . (list "Deny" "Warn" "Audit")) -}}
{{- fail (printf "admission.%s.validationActions: %q is not one of Deny, Warn, Audit" $.guard .) -}}
{{- end -}}
{{- end -}}
{{- if and (has "Deny" $actions) (has "Warn" $actions) -}}
{{- fail (printf "admission.%s.validationActions: Deny and Warn cannot be combined (use [Deny] or [Warn, Audit])" .guard) -}}
{{- end -}}
{{- $spec := include "domicile.bindingSpec" . -}}
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata:
  name: {{ .name }}
  labels:
    {{- include "domicile.labels" .root | nindent 4 }}
    domicile.dev/guard: {{ .guard }}
  annotations:
    {{- include "domicile.specDigest" $spec | nindent 4 }}
spec:
  {{- $spec | nindent 2 }}
{{- end -}}

{{- define "domicile.bindingSpec" -}}
policyName: {{ .name }}
validationActions: {{ toJson .values.validationActions }}
{{- with .paramRef }}
paramRef:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* Namespaces of a jurisdiction that are not exempt. */}}
{{- define "domicile.jurisdictionNamespaces" -}}
namespaceSelector:
  matchExpressions:
    - key: domicile.dev/jurisdiction
      operator: Exists
    - key: {{ .Values.admission.exemptLabel }}
      operator: NotIn
      values: [exempt]
{{- end -}}
