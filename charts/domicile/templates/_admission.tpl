{{/* The pods policy's spec: placement, the data claims, the data-centre label and the baseline
Pod Security Standard, for pods and for the ephemeral containers of `kubectl debug`. */}}
{{- define "domicile.policy.pods" -}}
{{- $jurisdictionKey := .Values.labelKeys.jurisdiction | quote -}}
{{- $subdivisionKey := .Values.labelKeys.subdivision | quote -}}
failurePolicy: Fail
matchConstraints:
  {{- include "domicile.jurisdictionNamespaces" . | nindent 2 }}
  resourceRules:
    - apiGroups: [""]
      apiVersions: [v1]
      operations: [CREATE, UPDATE]
      resources: [pods, pods/ephemeralcontainers]
      scope: Namespaced
variables:
  - name: code
    expression: namespaceObject.metadata.labels['domicile.dev/jurisdiction']
  - name: valid
    expression: variables.code.matches('^[A-Z]{2}(-[A-Z0-9]{1,3})?$')
  # The subresource written, '' for the pod itself (the field is absent then).
  - name: subresource
    expression: "has(request.subResource) ? request.subResource : ''"
  # Where a pod may run is fixed at creation; after it, only while scheduling gates hold it.
  - name: placing
    expression: >-
      request.operation == 'CREATE' || (variables.subresource == '' &&
      has(oldObject.spec.schedulingGates) && size(oldObject.spec.schedulingGates) > 0)
  # What a pod can do to its host is fixed at creation, but for the containers kubectl debug adds.
  - name: creating
    expression: request.operation == 'CREATE' || variables.subresource == 'ephemeralcontainers'
  - name: trusted
    expression: >-
      request.userInfo.username in {{ include "domicile.trustedUsers" . }}
  # [label key, value] pairs a node must carry: the country, and the subdivision if named.
  - name: required
    expression: >-
      variables.code.size() > 2
      ? [[{{ $jurisdictionKey }}, variables.code.substring(0, 2)], [{{ $subdivisionKey }}, variables.code]]
      : [[{{ $jurisdictionKey }}, variables.code]]
  - name: selector
    expression: 'has(object.spec.nodeSelector) ? object.spec.nodeSelector : {}'
  - name: terms
    expression: >-
      has(object.spec.affinity) && has(object.spec.affinity.nodeAffinity) &&
      has(object.spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution)
      ? object.spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms
      : []
  # Requirements met neither by the nodeSelector nor by every term of the required affinity
  # (terms are ORed: one term without the requirement lets the pod go anywhere).
  - name: unmet
    expression: >-
      variables.required.filter(r,
        !(r[0] in variables.selector && variables.selector[r[0]] == r[1]) &&
        !(size(variables.terms) > 0 && variables.terms.all(t, has(t.matchExpressions) &&
          t.matchExpressions.exists(e, e.key == r[0] && e.operator == 'In' && e.values == [r[1]]))))
  - name: pod
    expression: >-
      'pod ' + (has(object.metadata.name) && object.metadata.name != ''
      ? object.metadata.name : object.metadata.generateName + '*')
  - name: volumes
    expression: 'has(object.spec.volumes) ? object.spec.volumes : []'
  - name: foreignVolumes
    expression: >-
      variables.volumes.filter(v, !(has(v.persistentVolumeClaim) ||
      has(v.ephemeral) || has(v.emptyDir) || has(v.configMap) || has(v.secret) ||
      has(v.downwardAPI) || has(v.projected) || has(v.image))).map(v, v.name)
  # Claims named as a StatefulSet's volume claim template `data` names them (data-NAME-N):
  # a RegionalDataCenter's data, and any StatefulSet's of the same shape.
  - name: dataClaims
    expression: >-
      variables.volumes.filter(v, has(v.persistentVolumeClaim) &&
      v.persistentVolumeClaim.claimName.matches('^data-.+-[0-9]+$'))
      .map(v, v.persistentVolumeClaim.claimName)
  # The StatefulSets that claim to control the pod (anyone may write an ownerReference; only
  # the controllers' word counts, hence trusted below).
  - name: ownerSets
    expression: >-
      has(object.metadata.ownerReferences) ? object.metadata.ownerReferences.filter(r,
      r.apiVersion == 'apps/v1' && r.kind == 'StatefulSet' && has(r.controller) &&
      r.controller).map(r, r.name) : []
  - name: dataCentre
    expression: >-
      [object, oldObject].map(o, o != null && has(o.metadata.labels) &&
      'domicile.dev/regional-data-center' in o.metadata.labels
      ? o.metadata.labels['domicile.dev/regional-data-center'] : '')
  # A replica carries its data centre's label, which only the operator's StatefulSet templates
  # may hold (the managed policy): a tenant's StatefulSet of a deleted data centre's name gets
  # no claim the data centre kept.
  - name: strangerClaims
    expression: >-
      variables.dataClaims.filter(c, !(variables.trusted &&
      object.metadata.name == c.substring(5) &&
      variables.ownerSets.exists(s, c == 'data-' + s + object.metadata.name.substring(s.size()) &&
      variables.dataCentre[0] == s)))
  # Generic ephemeral volumes make a claim named <pod>-<volume>: never a data claim's name.
  - name: mintedClaims
    expression: >-
      variables.volumes.filter(v, has(v.ephemeral)).map(v, object.metadata.name + '-' + v.name)
      .filter(c, c.matches('^data-.+-[0-9]+$'))
  # Containers of three types, hence dyn().
  - name: containers
    expression: >-
      (has(object.spec.containers) ? object.spec.containers.map(c, dyn(c)) : []) +
      (has(object.spec.initContainers) ? object.spec.initContainers.map(c, dyn(c)) : []) +
      (has(object.spec.ephemeralContainers) ? object.spec.ephemeralContainers.map(c, dyn(c)) : [])
  # The pod's security context and each container's.
  - name: contexts
    expression: >-
      (has(object.spec.securityContext) ? [dyn(object.spec.securityContext)] : []) +
      variables.containers.filter(c, has(c.securityContext)).map(c, c.securityContext)
  # What the baseline Pod Security Standard forbids, each finding named.
  - name: unsafe
    expression: >-
      (has(object.spec.hostNetwork) && object.spec.hostNetwork ? ['hostNetwork: true'] : []) +
      (has(object.spec.hostPID) && object.spec.hostPID ? ['hostPID: true'] : []) +
      (has(object.spec.hostIPC) && object.spec.hostIPC ? ['hostIPC: true'] : []) +
      variables.volumes.filter(v, has(v.hostPath)).map(v, 'hostPath volume ' + v.name) +
      variables.containers.filter(c, has(c.securityContext) && has(c.securityContext.privileged) &&
      c.securityContext.privileged).map(c, 'privileged container ' + c.name) +
      variables.containers.filter(c, has(c.ports) && c.ports.exists(p, has(p.hostPort) && p.hostPort != 0))
      .map(c, 'host port in container ' + c.name) +
      variables.containers.filter(c, has(c.securityContext) && has(c.securityContext.capabilities) &&
      has(c.securityContext.capabilities.add) && c.securityContext.capabilities.add.exists(a, !(a in
      ['AUDIT_WRITE', 'CHOWN', 'DAC_OVERRIDE', 'FOWNER', 'FSETID', 'KILL', 'MKNOD',
      'NET_BIND_SERVICE', 'SETFCAP', 'SETGID', 'SETPCAP', 'SETUID', 'SYS_CHROOT'])))
      .map(c, 'added capabilities in container ' + c.name) +
      variables.containers.filter(c, has(c.securityContext) && has(c.securityContext.procMount) &&
      c.securityContext.procMount != 'Default').map(c, 'procMount in container ' + c.name) +
      variables.contexts.filter(s, (has(s.seccompProfile) && s.seccompProfile.type == 'Unconfined') ||
      (has(s.appArmorProfile) && s.appArmorProfile.type == 'Unconfined') ||
      (has(s.windowsOptions) && has(s.windowsOptions.hostProcess) && s.windowsOptions.hostProcess) ||
      (has(s.seLinuxOptions) && ((has(s.seLinuxOptions.type) && !(s.seLinuxOptions.type in
      ['', 'container_t', 'container_init_t', 'container_kvm_t', 'container_engine_t'])) ||
      (has(s.seLinuxOptions.user) && s.seLinuxOptions.user != '') ||
      (has(s.seLinuxOptions.role) && s.seLinuxOptions.role != '')))).map(s,
      'an unconfined seccomp or AppArmor profile, a host process or an SELinux option') +
      (has(object.spec.securityContext) && has(object.spec.securityContext.sysctls)
      ? object.spec.securityContext.sysctls.filter(s, !(s.name in
      ['kernel.shm_rmid_forced', 'net.ipv4.ip_local_port_range', 'net.ipv4.ip_unprivileged_port_start',
      'net.ipv4.tcp_syncookies', 'net.ipv4.ping_group_range', 'net.ipv4.ip_local_reserved_ports',
      'net.ipv4.tcp_keepalive_time', 'net.ipv4.tcp_fin_timeout', 'net.ipv4.tcp_keepalive_intvl',
      'net.ipv4.tcp_keepalive_probes'])).map(s, 'sysctl ' + s.name) : [])
validations:
  - expression: '!(variables.placing || variables.creating) || variables.valid'
    messageExpression: >-
      'namespace ' + namespaceObject.metadata.name + ' has domicile.dev/jurisdiction=' +
      variables.code + ', which is not a jurisdiction: use an ISO 3166-1 country such as CN,
      or a subdivision such as CN-SH'
    reason: Forbidden
  - expression: '!variables.placing || !variables.valid || size(variables.unmet) == 0'
    messageExpression: >-
      variables.pod + ' could run outside ' + variables.code + ': namespace ' +
      namespaceObject.metadata.name + ' belongs to jurisdiction ' + variables.code +
      ', so every pod must require ' + variables.unmet.map(r, r[0] + '=' + r[1]).join(' and ') +
      '. Add spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution with
      matchExpressions ' + variables.unmet.map(r, '{key: ' + r[0] + ', operator: In, values: [' +
      r[1] + ']}').join(', ') + ' in every nodeSelectorTerm, or spec.nodeSelector {' +
      variables.unmet.map(r, r[0] + ': ' + r[1]).join(', ') + '}'
    reason: Forbidden
  - expression: request.operation != 'CREATE' || !has(object.spec.nodeName) || object.spec.nodeName == ''
    messageExpression: >-
      variables.pod + ' names its node (spec.nodeName: ' + object.spec.nodeName + '), which
      skips the scheduler and so the jurisdiction; leave spec.nodeName empty in namespace ' +
      namespaceObject.metadata.name
    reason: Forbidden
  - expression: '!variables.creating || size(variables.foreignVolumes) == 0'
    messageExpression: >-
      variables.pod + ' mounts ' + variables.foreignVolumes.join(', ') + ', whose data no claim
      in namespace ' + namespaceObject.metadata.name + ' accounts for; in a jurisdiction namespace
      use persistentVolumeClaim, ephemeral, emptyDir, configMap, secret, downwardAPI, projected
      or image volumes'
    reason: Forbidden
  - expression: '!variables.creating || size(variables.unsafe) == 0'
    messageExpression: >-
      variables.pod + ' breaks the baseline Pod Security Standard, which every pod of
      jurisdiction namespace ' + namespaceObject.metadata.name + ' meets: ' +
      variables.unsafe.join(', ') + ' (a pod with these can read its node, and the data of
      every other pod there)'
    reason: Forbidden
  - expression: request.operation != 'CREATE' || size(variables.mintedClaims) == 0
    messageExpression: >-
      variables.pod + ' would make claim ' + variables.mintedClaims.join(', ') + ' through its
      ephemeral volumes, the name a replica gives its data claim; name the pod or the volume otherwise'
    reason: Forbidden
  - expression: request.operation != 'CREATE' || size(variables.strangerClaims) == 0
    messageExpression: >-
      variables.pod + ' mounts ' + variables.strangerClaims.map(c, 'claim ' + c + ', the data of
      replica ' + c.substring(5)).join(' and ') + ': only that replica, created by the StatefulSet
      controller for its StatefulSet, may mount it in jurisdiction namespace ' +
      namespaceObject.metadata.name + ' (read the data through the replica instead)'
    reason: Forbidden
  # A pod with the label must be a replica: named L-N and controlled by StatefulSet L (a
  # Deployment's pods are made by a trusted controller too, from a template the tenant wrote).
  - expression: >-
      variables.subresource != '' || (request.operation == 'CREATE'
      ? variables.dataCentre[0] == '' || (variables.trusted &&
        variables.ownerSets.exists(s, s == variables.dataCentre[0]) &&
        object.metadata.name.startsWith(variables.dataCentre[0] + '-') &&
        object.metadata.name.substring(size(variables.dataCentre[0]) + 1).matches('^[0-9]+$'))
      : variables.trusted || variables.dataCentre[0] == variables.dataCentre[1])
    messageExpression: >-
      'the label domicile.dev/regional-data-center marks the replicas of a RegionalDataCenter,
      which its fence and audit trust: only the pods of its StatefulSet, made by the StatefulSet
      controller, carry it, so ' + request.userInfo.username + ' may not ' +
      (request.operation == 'CREATE' ? 'create ' + variables.pod + ' with it' :
      'change or remove it on ' + variables.pod)
    reason: Forbidden
{{- end -}}

{{- define "domicile.policy.claims" -}}
{{- $jurisdictionKey := .Values.labelKeys.jurisdiction | quote -}}
failurePolicy: Fail
# The ConfigMap <fullname>-storage-classes: class name -> the jurisdiction its label declares,
# kept by the operator from the StorageClasses labelled with the jurisdiction label.
paramKind:
  apiVersion: v1
  kind: ConfigMap
matchConstraints:
  {{- include "domicile.jurisdictionNamespaces" . | nindent 2 }}
  resourceRules:
    - apiGroups: [""]
      apiVersions: [v1]
      operations: [CREATE, UPDATE]
      resources: [persistentvolumeclaims]
      scope: "*"
matchConditions:
  # A claim's class is set at creation; after it, only from none to a default class.
  - name: class-can-change
    expression: >-
      request.operation == 'CREATE' ||
      (has(object.spec.storageClassName) ? object.spec.storageClassName : '') !=
      (has(oldObject.spec.storageClassName) ? oldObject.spec.storageClassName : '')
variables:
  - name: code
    expression: namespaceObject.metadata.labels['domicile.dev/jurisdiction']
  - name: class
    expression: "has(object.spec.storageClassName) ? object.spec.storageClassName : ''"
  - name: declared
    expression: 'has(params.data) ? params.data : {}'
  # A class declared for the jurisdiction, or for a subdivision of the namespace's country
  # (VolumeSnapshotClasses, under keys of their own, are the snapshots policy's).
  - name: fits
    expression: >-
      variables.declared.filter(c, !c.startsWith('VolumeSnapshotClass.') &&
      (variables.declared[c] == variables.code ||
      (variables.code.size() == 2 && variables.declared[c].startsWith(variables.code + '-'))))
validations:
  - expression: variables.class in variables.fits
    messageExpression: >-
      'claim ' + object.metadata.name + ' names ' + (variables.class == '' ? 'no StorageClass'
      : 'StorageClass ' + variables.class) + ', which does not declare ' + variables.code +
      ': namespace ' + namespaceObject.metadata.name + ' belongs to jurisdiction ' +
      variables.code + ', so a claim must name a class labelled ' + {{ $jurisdictionKey }} + '=' +
      variables.code.substring(0, 2) + (size(variables.fits) > 0 ? ' (here: ' +
      variables.fits.join(', ') + ')' : ' (none is yet: label one, or let a RegionalDataCenter
      make one)')
    reason: Forbidden
  # A copy of a data claim is the data: a clone (dataSource, dataSourceRef) is the replica's
  # StatefulSet's alone.
  - expression: >-
      request.operation != 'CREATE' || request.userInfo.username in {{ include "domicile.trustedUsers" . }} ||
      (!(has(object.spec.dataSource) && object.spec.dataSource.kind == 'PersistentVolumeClaim' &&
      object.spec.dataSource.name.matches('^data-.+-[0-9]+$')) &&
      !(has(object.spec.dataSourceRef) && object.spec.dataSourceRef.kind == 'PersistentVolumeClaim' &&
      object.spec.dataSourceRef.name.matches('^data-.+-[0-9]+$')))
    messageExpression: >-
      'claim ' + object.metadata.name + ' would be a copy of a data claim (spec.dataSource or
      dataSourceRef names one): in jurisdiction namespace ' + namespaceObject.metadata.name +
      ' the data of a replica is not cloned'
    reason: Forbidden
  # A claim made ahead of a StatefulSet under the name its template would give would be taken
  # by the replica as its own, and stay its maker's.
  - expression: >-
      request.operation != 'CREATE' || !object.metadata.name.matches('^data-.+-[0-9]+$') ||
      request.userInfo.username in {{ include "domicile.trustedUsers" . }}
    messageExpression: >-
      'claim ' + object.metadata.name + ' has the name a StatefulSet gives the data claim of
      its replica ' + object.metadata.name.substring(5) + ', which the replica would take as its
      own: in jurisdiction namespace ' + namespaceObject.metadata.name + ' only the StatefulSet
      controller makes claims named data-NAME-N; name it otherwise'
    reason: Forbidden
{{- end -}}

{{- define "domicile.policy.snapshots" -}}
{{- $jurisdictionKey := .Values.labelKeys.jurisdiction | quote -}}
failurePolicy: Fail
# The ConfigMap <fullname>-storage-classes: VolumeSnapshotClass.<name> -> the jurisdiction its
# label declares, kept by the operator from the VolumeSnapshotClasses labelled with it.
paramKind:
  apiVersion: v1
  kind: ConfigMap
matchConstraints:
  {{- include "domicile.jurisdictionNamespaces" . | nindent 2 }}
  resourceRules:
    - apiGroups: [snapshot.storage.k8s.io]
      apiVersions: ["*"]
      operations: [CREATE, UPDATE]
      resources: [volumesnapshots]
      scope: "*"
matchConditions:
  - name: class-can-change
    expression: >-
      request.operation == 'CREATE' ||
      (has(object.spec.volumeSnapshotClassName) ? object.spec.volumeSnapshotClassName : '') !=
      (has(oldObject.spec.volumeSnapshotClassName) ? oldObject.spec.volumeSnapshotClassName : '')
variables:
  - name: code
    expression: namespaceObject.metadata.labels['domicile.dev/jurisdiction']
  - name: class
    expression: "has(object.spec.volumeSnapshotClassName) ? object.spec.volumeSnapshotClassName : ''"
  - name: declared
    expression: 'has(params.data) ? params.data : {}'
  # The snapshot classes declared for the jurisdiction, or for a subdivision of its country.
  - name: fits
    expression: >-
      variables.declared.filter(c, c.startsWith('VolumeSnapshotClass.') &&
      (variables.declared[c] == variables.code ||
      (variables.code.size() == 2 && variables.declared[c].startsWith(variables.code + '-'))))
      .map(c, c.substring(20))
validations:
  # Where a copy is kept was decided when it was taken: naming another class later would only
  # change what the snapshot says, not where its content is.
  - expression: >-
      request.operation == 'CREATE' || !has(oldObject.spec.volumeSnapshotClassName) ||
      oldObject.spec.volumeSnapshotClassName == ''
    messageExpression: >-
      'snapshot ' + object.metadata.name + ' was taken with VolumeSnapshotClass ' +
      oldObject.spec.volumeSnapshotClassName + ', and its class cannot change: the copy stays
      where that class keeps it; delete the snapshot and take another with a class declared for '
      + variables.code
    reason: Forbidden
  # A default class is not trusted: which class is the default can change after admission.
  - expression: variables.class in variables.fits
    messageExpression: >-
      'snapshot ' + object.metadata.name + ' names ' + (variables.class == '' ? 'no
      VolumeSnapshotClass' : 'VolumeSnapshotClass ' + variables.class) + ', which does not declare
      ' + variables.code + ': a snapshot is a copy of the data, and namespace ' +
      namespaceObject.metadata.name + ' belongs to jurisdiction ' + variables.code + ', so a
      snapshot must name a class labelled ' + {{ $jurisdictionKey }} + '=' +
      variables.code.substring(0, 2) + (size(variables.fits) > 0 ? ' (here: ' +
      variables.fits.join(', ') + ')' : ' (none is yet: an admin labels the class whose
      snapshots stay in ' + variables.code + ')')
    reason: Forbidden
{{- end -}}

{{- define "domicile.policy.backups" -}}
{{- $jurisdictionKey := .Values.labelKeys.jurisdiction | quote -}}
failurePolicy: Fail
# The ConfigMap <fullname>-storage-classes, kept by the operator, also holds
# Namespace.<name> -> the jurisdiction a namespace is labelled with, and
# BackupStorageLocation.<namespace>.<name> and VolumeSnapshotLocation.<namespace>.<name> -> the
# jurisdiction a location's label declares ('' for none).
paramKind:
  apiVersion: v1
  kind: ConfigMap
matchConstraints:
  # Velero's own namespace is no jurisdiction namespace: every namespace but the exempt ones.
  namespaceSelector:
    matchExpressions:
      - key: {{ .Values.admission.exemptLabel }}
        operator: NotIn
        values: [exempt]
  resourceRules:
    - apiGroups: [velero.io]
      apiVersions: ["*"]
      operations: [CREATE, UPDATE]
      resources: [backups, schedules]
      scope: Namespaced
# Velero writes its progress into the objects it runs: only a new object or a changed spec is
# judged, so a backup admitted earlier is never stuck half-way.
matchConditions:
  - name: spec-changes
    expression: request.operation == 'CREATE' || object.spec != oldObject.spec
variables:
  - name: spec
    expression: >-
      object.kind == 'Schedule' ? (has(object.spec.template) ? dyn(object.spec.template) : dyn({}))
      : dyn(object.spec)
  - name: declared
    expression: 'has(params.data) ? params.data : {}'
  - name: included
    expression: >-
      has(variables.spec.includedNamespaces) && size(variables.spec.includedNamespaces) > 0 ?
      variables.spec.includedNamespaces : ['*']
  - name: excluded
    expression: "has(variables.spec.excludedNamespaces) ? variables.spec.excludedNamespaces : []"
  # Every PersistentVolume is cluster-scoped: a backup that copies them, and snapshots them,
  # copies every namespace's data. Velero reads a resource under any spelling or pattern.
  - name: volumes
    expression: >-
      !(has(variables.spec.snapshotVolumes) && variables.spec.snapshotVolumes == false) &&
      ((has(variables.spec.includeClusterResources) && variables.spec.includeClusterResources == true) ||
      (has(variables.spec.includedClusterScopedResources) &&
      variables.spec.includedClusterScopedResources.exists(r, r.lowerAscii().startsWith('persistentvolume') ||
      r.lowerAscii() == 'pv' || r.contains('*') || r.contains('?') || r.contains('['))))
  # The jurisdiction namespaces it copies, as Velero reads its patterns (*, ?, [...]).
  # ([!x] is a negated class in Velero's globs, [^x] in a regular expression.)
  - name: copied
    expression: >-
      variables.declared.filter(k, k.startsWith('Namespace.')).map(k, k.substring(10)).filter(n,
      variables.volumes || (variables.included.exists(p, p == '*' ||
      n.matches('^' + p.replace('*', '.*').replace('?', '.').replace('[!', '[^') + '$')) &&
      !variables.excluded.exists(p, p == '*' ||
      n.matches('^' + p.replace('*', '.*').replace('?', '.').replace('[!', '[^') + '$'))))
  - name: location
    expression: >-
      'BackupStorageLocation.' + object.metadata.namespace + '.' +
      (has(variables.spec.storageLocation) ? variables.spec.storageLocation : '')
  # Those it names, and every one of its namespace: Velero adds a provider's only location to
  # the ones named, and fills them into the spec as it starts.
  - name: snapshots
    expression: >-
      has(variables.spec.snapshotVolumes) && variables.spec.snapshotVolumes == false ? [] :
      (has(variables.spec.volumeSnapshotLocations) ?
      variables.spec.volumeSnapshotLocations.map(l, 'VolumeSnapshotLocation.' +
      object.metadata.namespace + '.' + l) : []) +
      variables.declared.filter(k, k.startsWith('VolumeSnapshotLocation.' + object.metadata.namespace + '.'))
  # The copied namespaces whose jurisdiction a location does not declare (or its subdivision).
  - name: outside
    expression: >-
      variables.copied.filter(n, !([variables.location] + variables.snapshots).all(l,
      l in variables.declared && (variables.declared[l] == variables.declared['Namespace.' + n] ||
      (variables.declared['Namespace.' + n].size() == 2 &&
      variables.declared[l].startsWith(variables.declared['Namespace.' + n] + '-')))))
validations:
  - expression: size(variables.outside) == 0
    messageExpression: >-
      object.kind + ' ' + object.metadata.name + ' copies namespace' + (size(variables.outside) > 1
      ? 's ' : ' ') + variables.outside.join(', ') + ', which belong' + (size(variables.outside) > 1
      ? '' : 's') + ' to jurisdiction ' + variables.outside.map(n, variables.declared['Namespace.' +
      n]).join(', ') + ': a backup is a copy of the data, so its BackupStorageLocation (' +
      (has(variables.spec.storageLocation) ? variables.spec.storageLocation : 'none named') + ')
      and every VolumeSnapshotLocation it may use must be labelled ' + {{ $jurisdictionKey }} +
      ' with that jurisdiction; name such a location, exclude the namespace, or set
      snapshotVolumes: false where no VolumeSnapshotLocation is declared'
    reason: Forbidden
{{- end -}}

{{- define "domicile.policy.managed" -}}
{{- $exempt := .Values.admission.exemptLabel -}}
{{- $operator := include "domicile.operatorUser" . -}}
failurePolicy: Fail
matchConstraints:
  # Cluster-scoped objects (volumes, classes) are always checked; namespaced ones unless exempt.
  namespaceSelector:
    matchExpressions:
      - key: {{ $exempt }}
        operator: NotIn
        values: [exempt]
  resourceRules:
    - apiGroups: [apps]
      apiVersions: [v1]
      operations: [CREATE, UPDATE, DELETE]
      resources: [statefulsets, deployments, replicasets, daemonsets]
      scope: "*"
    - apiGroups: [batch]
      apiVersions: [v1]
      operations: [CREATE, UPDATE, DELETE]
      resources: [jobs, cronjobs]
      scope: "*"
    - apiGroups: [""]
      apiVersions: [v1]
      operations: [CREATE, UPDATE, DELETE]
      resources: [services, persistentvolumeclaims, persistentvolumes, configmaps]
      scope: "*"
    - apiGroups: [networking.k8s.io]
      apiVersions: [v1]
      operations: [CREATE, UPDATE, DELETE]
      resources: [networkpolicies]
      scope: "*"
    - apiGroups: [storage.k8s.io]
      apiVersions: [v1]
      operations: [CREATE, UPDATE, DELETE]
      resources: [storageclasses]
      scope: "*"
    # The histories and the policy reports, so that nobody else rewrites the evidence.
    - apiGroups: [domicile.dev]
      apiVersions: ["*"]
      operations: [CREATE, UPDATE, DELETE]
      resources: [residencyhistories, residencyhistories/status]
      scope: "*"
    - apiGroups: [wgpolicyk8s.io]
      apiVersions: ["*"]
      operations: [CREATE, UPDATE, DELETE]
      resources: [policyreports]
      scope: "*"
    - apiGroups: [openreports.io]
      apiVersions: ["*"]
      operations: [CREATE, UPDATE, DELETE]
      resources: [reports]
      scope: "*"
    # The leader Lease: whoever holds it decides which replica reconciles.
    - apiGroups: [coordination.k8s.io]
      apiVersions: [v1]
      operations: [CREATE, UPDATE, DELETE]
      resources: [leases]
      scope: "*"
matchConditions:
  # Before and after: taking the labels off is a change to a managed object too.
  # Or a workload whose pods would carry a data centre's label: its pods would pass for
  # replicas (the fence lets them in, and the pods policy lets them mount the data claims).
  - name: managed-by-domicile
    expression: >-
      [object, oldObject].exists(o, o != null && ((has(o.metadata.labels) &&
      (('app.kubernetes.io/managed-by' in o.metadata.labels &&
      o.metadata.labels['app.kubernetes.io/managed-by'] == 'domicile') ||
      'domicile.dev/regional-data-center' in o.metadata.labels)) ||
      (request.resource.resource in ['statefulsets', 'deployments', 'replicasets', 'daemonsets', 'jobs'] &&
      has(dyn(o).spec.template.metadata) && has(dyn(o).spec.template.metadata.labels) &&
      'domicile.dev/regional-data-center' in dyn(o).spec.template.metadata.labels) ||
      (request.resource.resource == 'cronjobs' && has(dyn(o).spec.jobTemplate.spec.template.metadata) &&
      has(dyn(o).spec.jobTemplate.spec.template.metadata.labels) &&
      'domicile.dev/regional-data-center' in dyn(o).spec.jobTemplate.spec.template.metadata.labels)))
  # A volume whose claim is gone (Released) may be deleted by whoever RBAC lets: an admin
  # clearing what a deleted data centre retained. Its data stays where it is (Retain).
  - name: not-a-released-volume
    expression: >-
      !(request.operation == 'DELETE' && request.resource.resource == 'persistentvolumes' &&
      has(dyn(oldObject).status) && has(dyn(oldObject).status.phase) &&
      dyn(oldObject).status.phase == 'Released')
  - name: not-the-operator-nor-a-controller
    expression: >-
      !(request.userInfo.username in {{ prepend .Values.admission.managed.controllers $operator | toJson }})
variables:
  - name: managed
    expression: 'object != null ? object : oldObject'
  - name: owner
    expression: >-
      has(variables.managed.metadata.labels) &&
      'domicile.dev/regional-data-center' in variables.managed.metadata.labels
      ? ' of RegionalDataCenter ' + variables.managed.metadata.labels['domicile.dev/regional-data-center']
      : ''
  # Matched for its pod template alone: a workload of someone else's, not one the operator keeps.
  - name: templatedOnly
    expression: >-
      !(has(variables.managed.metadata.labels) &&
      (('app.kubernetes.io/managed-by' in variables.managed.metadata.labels &&
      variables.managed.metadata.labels['app.kubernetes.io/managed-by'] == 'domicile') ||
      'domicile.dev/regional-data-center' in variables.managed.metadata.labels))
validations:
  - expression: '!variables.templatedOnly'
    messageExpression: >-
      'the pods of ' + request.kind.kind + ' ' + variables.managed.metadata.name + ' would carry
      the label domicile.dev/regional-data-center, which marks the replicas of a
      RegionalDataCenter (its fence lets them in, its data claims are theirs): only the
      StatefulSets of the operator make such pods; take the label out of the pod template'
    reason: Forbidden
  - expression: variables.templatedOnly
    messageExpression: >-
      'managed by domicile: edit the RegionalDataCenter instead (' + request.kind.kind + ' ' +
      variables.managed.metadata.name + variables.owner + ' is kept by the operator; ' +
      request.userInfo.username + ' may not ' + request.operation.lowerAscii() + ' it)'
    reason: Forbidden
{{- end -}}

{{- define "domicile.policy.operator" -}}
{{- $operator := include "domicile.operatorUser" . -}}
failurePolicy: Fail
# Every verb of the operator's ClusterRole that writes, DELETE included.
matchConstraints:
  resourceRules:
    - apiGroups: [""]
      apiVersions: [v1]
      operations: [CREATE, UPDATE, DELETE]
      resources: [persistentvolumes, persistentvolumeclaims, pods, services, namespaces]
      scope: "*"
    - apiGroups: [apps]
      apiVersions: [v1]
      operations: [CREATE, UPDATE, DELETE]
      resources: [statefulsets]
      scope: "*"
    - apiGroups: [storage.k8s.io]
      apiVersions: [v1]
      operations: [CREATE, UPDATE, DELETE]
      resources: [storageclasses]
      scope: "*"
    - apiGroups: [networking.k8s.io]
      apiVersions: [v1]
      operations: [CREATE, UPDATE, DELETE]
      resources: [networkpolicies]
      scope: "*"
    - apiGroups: [coordination.k8s.io]
      apiVersions: [v1]
      operations: [CREATE, UPDATE]
      resources: [leases]
      scope: "*"
matchConditions:
  - name: the-operator
    expression: request.userInfo.username == {{ $operator | quote }}
variables:
  - name: resource
    expression: request.resource.resource
  # Objects of several kinds meet here, hence dyn(); on DELETE only the old object is there.
  - name: target
    expression: 'object != null ? dyn(object) : dyn(oldObject)'
  - name: podSpec
    expression: >-
      object == null ? null : variables.resource == 'pods' ? dyn(object).spec :
      variables.resource == 'statefulsets' ? dyn(object).spec.template.spec : null
  - name: containers
    expression: >-
      variables.podSpec == null ? [] :
      (has(variables.podSpec.containers) ? variables.podSpec.containers : []) +
      (has(variables.podSpec.initContainers) ? variables.podSpec.initContainers : [])
  - name: root
    expression: {{ printf "'%s/'" (trimSuffix "/" .Values.localRoot) | quote }}
  - name: path
    expression: >-
      variables.resource == 'persistentvolumes' && object != null && has(dyn(object).spec.local)
      ? dyn(object).spec.local.path : ''
  # A local volume's path is derived from the claim it is made for:
  # <root>/<namespace>/<data centre>/ (then the data centre's UID, and the ordinal).
  - name: claim
    expression: >-
      variables.resource == 'persistentvolumes' && object != null &&
      has(dyn(object).spec.claimRef) && dyn(object).spec.claimRef.name.matches('^data-.+-[0-9]+$')
      ? dyn(object).spec.claimRef : null
  - name: derivedPrefix
    expression: >-
      variables.claim == null ? '' : variables.root + variables.claim.namespace + '/' +
      variables.claim.name.substring(5, variables.claim.name.lastIndexOf('-')) + '/'
  - name: labels
    expression: >-
      [object, oldObject].map(o, o == null || !has(o.metadata.labels) ? {} : o.metadata.labels)
  - name: annotations
    expression: >-
      [object, oldObject].map(o, o == null || !has(o.metadata.annotations) ? {} : o.metadata.annotations)
  # What the operator made carries its labels; it deletes nothing else.
  - name: made
    expression: >-
      'app.kubernetes.io/managed-by' in variables.labels[1] &&
      variables.labels[1]['app.kubernetes.io/managed-by'] == 'domicile'
  - name: owners
    expression: >-
      has(variables.target.metadata.ownerReferences) ?
      variables.target.metadata.ownerReferences : []
validations:
  - expression: variables.resource != 'namespaces' || request.operation == 'UPDATE'
    message: the domicile operator may not create or delete namespaces
    reason: Forbidden
  - expression: >-
      variables.resource != 'namespaces' || request.operation != 'UPDATE' ||
      (variables.labels[1].all(k, k in variables.labels[0] &&
      variables.labels[0][k] == variables.labels[1][k]) &&
      variables.labels[0].all(k, k == 'domicile.dev/jurisdiction' || k in variables.labels[1]) &&
      variables.annotations[0] == variables.annotations[1] &&
      dyn(object).spec == dyn(oldObject).spec)
    message: >-
      the domicile operator may only add a missing domicile.dev/jurisdiction label to a
      namespace, and change nothing else of it
    reason: Forbidden
  {{- if not .Values.namespaces.labelAnyNamespace }}
  - expression: >-
      variables.resource != 'namespaces' || request.operation != 'UPDATE' ||
      variables.labels[0] == variables.labels[1] ||
      ('domicile.dev/labelling' in variables.labels[1] &&
      variables.labels[1]['domicile.dev/labelling'] == 'allowed')
    message: >-
      the domicile operator may label only namespaces an admin allowed it to
      (domicile.dev/labelling=allowed)
    reason: Forbidden
  {{- end }}
  - expression: >-
      variables.resource != 'persistentvolumes' || request.operation != 'CREATE' ||
      (variables.claim != null && variables.path.startsWith(variables.derivedPrefix) &&
      variables.path.endsWith('/' + variables.claim.name.substring(variables.claim.name.lastIndexOf('-') + 1)) &&
      !variables.path.split('/').exists(s, s == '..' || s == '.'))
    messageExpression: >-
      'the domicile operator may create only local volumes pre-bound to a data claim, at the
      path derived from it (' + (variables.claim == null ? 'a claim data-NAME-N' :
      variables.derivedPrefix + '.../' + variables.claim.name.substring(variables.claim.name.lastIndexOf('-') + 1)) +
      '), not ' + (variables.path == '' ? 'a volume of another kind' : variables.path)
    reason: Forbidden
  - expression: >-
      variables.podSpec == null || !has(variables.podSpec.volumes) ||
      !variables.podSpec.volumes.exists(v, has(v.hostPath))
    message: the domicile operator may not create pods or pod templates with hostPath volumes
    reason: Forbidden
  - expression: >-
      variables.podSpec == null || !['hostNetwork', 'hostPID', 'hostIPC'].exists(f,
      f in variables.podSpec && variables.podSpec[f] == true)
    message: the domicile operator may not create pods or pod templates in the host's namespaces
    reason: Forbidden
  - expression: >-
      !variables.containers.exists(c, has(c.securityContext) &&
      has(c.securityContext.privileged) && c.securityContext.privileged == true)
    message: the domicile operator may not create privileged containers
    reason: Forbidden
  - expression: >-
      request.operation != 'DELETE' || variables.resource in ['namespaces', 'pods'] || variables.made
    messageExpression: >-
      'the domicile operator deletes only what it made (labelled app.kubernetes.io/managed-by=domicile),
      not ' + request.kind.kind + ' ' + request.name
    reason: Forbidden
  - expression: >-
      variables.resource != 'statefulsets' || object == null ||
      (variables.owners.exists(r, r.apiVersion.startsWith('domicile.dev/') &&
      r.kind == 'RegionalDataCenter' && r.name == dyn(object).metadata.name &&
      has(r.controller) && r.controller) &&
      (!has(variables.podSpec.serviceAccountName) || variables.podSpec.serviceAccountName in ['', 'default']) &&
      has(variables.podSpec.automountServiceAccountToken) &&
      !variables.podSpec.automountServiceAccountToken)
    message: >-
      the domicile operator may write only StatefulSets controlled by the RegionalDataCenter of
      the same name, whose pods run as the default ServiceAccount without a token
    reason: Forbidden
  - expression: >-
      variables.resource != 'storageclasses' || (variables.target.metadata.name.startsWith('domicile-') &&
      variables.target.provisioner in [{{ .Values.storageProvisioner | quote }}, 'kubernetes.io/no-provisioner'])
    messageExpression: >-
      'the domicile operator may write only StorageClasses named domicile-* of the provisioner ' +
      {{ .Values.storageProvisioner | quote }} + ' (or kubernetes.io/no-provisioner), not ' +
      variables.target.metadata.name + ' of ' + variables.target.provisioner
    reason: Forbidden
  # A lease held for long would keep every other replica from taking over.
  - expression: >-
      variables.resource != 'leases' || (has(dyn(object).spec.leaseDurationSeconds) &&
      dyn(object).spec.leaseDurationSeconds <= 60)
    message: the domicile operator may hold its Lease for 60 seconds at most (leaseDurationSeconds)
    reason: Forbidden
  - expression: >-
      variables.resource != 'services' || object == null ||
      ((!has(dyn(object).spec.type) || dyn(object).spec.type == 'ClusterIP') &&
      (!has(dyn(object).spec.externalIPs) || size(dyn(object).spec.externalIPs) == 0))
    message: >-
      the domicile operator may write only ClusterIP Services without external IPs
    reason: Forbidden
{{- end -}}

{{/* The network policy's spec: in a jurisdiction namespace only the operator writes
NetworkPolicies (they add up, so a second one reopens a fence), and no Service reaches outside
the cluster. */}}
{{- define "domicile.policy.network" -}}
failurePolicy: Fail
matchConstraints:
  {{- include "domicile.jurisdictionNamespaces" . | nindent 2 }}
  resourceRules:
    - apiGroups: [networking.k8s.io]
      apiVersions: [v1]
      operations: [CREATE, UPDATE, DELETE]
      resources: [networkpolicies]
      scope: Namespaced
    - apiGroups: [""]
      apiVersions: [v1]
      operations: [CREATE, UPDATE]
      resources: [services]
      scope: Namespaced
variables:
  - name: trusted
    expression: >-
      request.userInfo.username in {{ include "domicile.trustedUsers" . }}
  - name: service
    expression: request.resource.resource == 'services'
  # How a Service would reach outside the cluster, each way named.
  - name: exposure
    expression: >-
      !variables.service ? [] :
      (has(dyn(object).spec.type) && dyn(object).spec.type in ['NodePort', 'LoadBalancer', 'ExternalName']
      ? ['type ' + dyn(object).spec.type] : []) +
      (has(dyn(object).spec.externalIPs) && size(dyn(object).spec.externalIPs) > 0
      ? ['externalIPs ' + dyn(object).spec.externalIPs.join(', ')] : [])
validations:
  - expression: variables.service || variables.trusted
    messageExpression: >-
      'in jurisdiction namespace ' + namespaceObject.metadata.name + ' only the domicile operator
      writes NetworkPolicies: policies add up, so another one would reopen the fence of a
      RegionalDataCenter. ' + request.userInfo.username + ' may not ' +
      request.operation.lowerAscii() + ' NetworkPolicy ' + request.name + '; let peers in with
      spec.network.allowedIngress of a RegionalDataCenter instead'
    reason: Forbidden
  - expression: size(variables.exposure) == 0
    messageExpression: >-
      'Service ' + request.name + ' would reach outside the cluster from jurisdiction namespace ' +
      namespaceObject.metadata.name + ' (' + variables.exposure.join(', ') + '): a Service there
      is of type ClusterIP (or headless) without externalIPs; publish the data through a
      gateway an admin runs in the jurisdiction'
    reason: Forbidden
{{- end -}}

{{/* The connect policy's spec: exec, attach and port-forward into the replicas of a
jurisdiction namespace (pods named NAME-N, as StatefulSets name them), for the groups named. */}}
{{- define "domicile.policy.connect" -}}
failurePolicy: Fail
matchConstraints:
  {{- include "domicile.jurisdictionNamespaces" . | nindent 2 }}
  resourceRules:
    - apiGroups: [""]
      apiVersions: [v1]
      operations: [CONNECT]
      resources: [pods/exec, pods/attach, pods/portforward, pods/proxy, services/proxy]
      scope: Namespaced
matchConditions:
  # A pod named like a replica (a proxy's name carries the port: NAME-N:8080), or any Service
  # (a data centre's is named as the data centre, and proxies to its replicas).
  - name: a-replica
    expression: >-
      request.resource.resource == 'services' || request.name.split(':')[0].matches('^.+-[0-9]+$')
  - name: not-an-allowed-group
    expression: >-
      !has(request.userInfo.groups) ||
      !request.userInfo.groups.exists(g, g in {{ .Values.admission.connect.groups | default list | toJson }})
validations:
  - expression: 'false'
    messageExpression: >-
      request.userInfo.username + ' may not ' + request.subResource + ' into ' +
      (request.resource.resource == 'services' ? 'service ' : 'pod ') + request.name +
      ' of jurisdiction namespace ' + namespaceObject.metadata.name + ': a replica holds data
      that stays in the jurisdiction, and a session into it carries the data to the client.
      Only members of the groups of the chart value admission.connect.groups may ' +
      '({{ .Values.admission.connect.groups | default list | join ", " | default "none is named" }})'
    reason: Forbidden
{{- end -}}

{{/* The data centres policy's spec: what a RegionalDataCenter's spec may ask for on behalf of
its author. */}}
{{- define "domicile.policy.datacenters" -}}
failurePolicy: Fail
matchConstraints:
  namespaceSelector:
    matchExpressions:
      - key: {{ .Values.admission.exemptLabel }}
        operator: NotIn
        values: [exempt]
  resourceRules:
    - apiGroups: [domicile.dev]
      apiVersions: ["*"]
      operations: [CREATE, UPDATE]
      resources: [regionaldatacenters]
      scope: Namespaced
matchConditions:
  # The operator's finalizer and other metadata changes ask nothing new.
  - name: spec-changes
    expression: request.operation == 'CREATE' || object.spec != oldObject.spec
variables:
  - name: env
    expression: >-
      has(object.spec.workload) && has(object.spec.workload.env) ? object.spec.workload.env : []
  # [resource, name] of every Secret and ConfigMap the workload's environment reads.
  - name: reads
    expression: >-
      variables.env.filter(e, has(e.valueFrom) && has(e.valueFrom.secretKeyRef) &&
      has(e.valueFrom.secretKeyRef.name)).map(e, ['secrets', string(e.valueFrom.secretKeyRef.name)]) +
      variables.env.filter(e, has(e.valueFrom) && has(e.valueFrom.configMapKeyRef) &&
      has(e.valueFrom.configMapKeyRef.name)).map(e, ['configmaps', string(e.valueFrom.configMapKeyRef.name)])
  - name: unreadable
    expression: >-
      variables.reads.filter(r, !authorizer.group('').resource(r[0]).namespace(request.namespace)
      .name(r[1]).check('get').allowed())
  - name: fenceOff
    expression: >-
      has(object.spec.network) && has(object.spec.network.fence) && !object.spec.network.fence
  - name: fenceOptional
    expression: >-
      has(namespaceObject.metadata.labels) && 'domicile.dev/fence' in namespaceObject.metadata.labels &&
      namespaceObject.metadata.labels['domicile.dev/fence'] == 'optional'
validations:
  - expression: size(variables.unreadable) == 0
    # A message cannot ask the authorizer, so it names every object read, not only the refused.
    messageExpression: >-
      'RegionalDataCenter ' + object.metadata.name + ' reads ' + variables.reads.map(r,
      (r[0] == 'secrets' ? 'Secret ' : 'ConfigMap ') + r[1]).join(', ') + ' in spec.workload.env
      (valueFrom), and ' + request.userInfo.username + ' may not get ' +
      (size(variables.reads) > 1 ? 'all of them' : 'it') + ': its pods would hand over what RBAC
      refuses. Ask an admin for get on each, or leave them out'
    reason: Forbidden
  - expression: '!variables.fenceOff || variables.fenceOptional'
    messageExpression: >-
      'spec.network.fence: false leaves the data pods of RegionalDataCenter ' +
      object.metadata.name + ' open to and from anywhere; only an admin may allow that, by
      labelling the namespace: kubectl label namespace ' + request.namespace +
      ' domicile.dev/fence=optional'
    reason: Forbidden
{{- end -}}

{{/* The users every namespace guard trusts: the operator and Kubernetes' controllers. */}}
{{- define "domicile.trustedUsers" -}}
{{- prepend .Values.admission.managed.controllers (include "domicile.operatorUser" .) | toJson -}}
{{- end -}}

{{/* A digest of the parts of a policy's or binding's spec that decide what it refuses, as the
operator computes it from the live object (src/guard/digest.rs): a policy edited in the cluster
no longer matches its annotation, and AdmissionGuarded says PolicyModified. */}}
{{- define "domicile.specDigest" -}}
{{- $spec := fromYaml . -}}
{{- $digested := pick $spec "failurePolicy" "paramKind" "matchConditions" "variables" "validations" "policyName" "validationActions" "paramRef" "matchResources" -}}
{{- with $spec.matchConstraints -}}
{{- $_ := set $digested "matchConstraints" (pick . "namespaceSelector" "resourceRules") -}}
{{- end -}}
domicile.dev/spec-digest: {{ $digested | toJson | sha256sum | quote }}
{{- end -}}
