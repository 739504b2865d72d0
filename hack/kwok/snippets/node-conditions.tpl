{{- /* The node's conditions as the label rollback.test/node-state asks for. */ -}}
{{ $state := or ( index ( or .metadata.labels dict ) "rollback.test/node-state" ) "" }}
conditions:
{{ range NodeConditions }}
- lastHeartbeatTime: {{ $now | Quote }}
  lastTransitionTime: {{ $now | Quote }}
  type: {{ .type | Quote }}
{{ if and ( eq .type "Ready" ) ( eq $state "NotReady" ) }}
  status: "False"
  reason: KubeletNotReady
  message: "kubelet stopped posting ready status (rollback.test/node-state=NotReady)"
{{ else if eq .type $state }}
  status: "True"
  reason: {{ printf "KubeletHas%s" .type | Quote }}
  message: {{ printf "node reports %s (rollback.test/node-state)" .type | Quote }}
{{ else }}
  status: {{ .status | Quote }}
  reason: {{ .reason | Quote }}
  message: {{ .message | Quote }}
{{ end }}
{{ end }}
