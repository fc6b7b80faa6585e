package kubelet

// Labels and annotations kubelet-lite puts on sandboxes and containers.
// The io.kubernetes.* and kubernetes.io/* keys are the kubelet's, so tools
// that know the kubelet's pods (crictl, log collectors) know ours.
const (
	labelPodName       = "io.kubernetes.pod.name"
	labelPodNamespace  = "io.kubernetes.pod.namespace"
	labelPodUID        = "io.kubernetes.pod.uid"
	labelContainerName = "io.kubernetes.container.name"
	// labelManagedBy marks what kubelet-lite created; everything else in
	// the runtime is foreign (see Config.RemoveForeign).
	labelManagedBy = "kubelet-lite.kctr.io/managed-by"
	managedByValue = "kubelet-lite"

	annotationConfigSource = "kubernetes.io/config.source"
	annotationConfigHash   = "kubernetes.io/config.hash"
	annotationManifestFile = "kubelet-lite.kctr.io/manifest"
	annotationGracePeriod  = "io.kubernetes.pod.terminationGracePeriod"

	annotationContainerHash          = "io.kubernetes.container.hash"
	annotationRestartCount           = "io.kubernetes.container.restartCount"
	annotationTerminationMessagePath = "io.kubernetes.container.terminationMessagePath"
	// annotationBackoff is the back-off waited before this container was
	// started; the next back-off doubles it, so CrashLoopBackOff survives a
	// restart of kubelet-lite.
	annotationBackoff = "kubelet-lite.kctr.io/backoff"
	// annotationInit marks init containers.
	annotationInit = "kubelet-lite.kctr.io/init-container"
)
