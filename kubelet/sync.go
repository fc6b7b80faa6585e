package kubelet

// Recovery: what kubelet-lite assumes and guarantees.
//
// Nothing that matters lives only in memory. The desired pods are the
// manifest files; what runs is listed from the runtime, found by the labels
// kubelet-lite put on it (labelManagedBy and the kubelet's
// io.kubernetes.pod.* labels); each container's restart count and the
// back-off it waited are annotations on it; a sandbox carries its manifest
// hash, manifest file and grace period as annotations; emptyDir volumes are
// under RootDir. So a restarted kubelet-lite lists the runtime, finds a
// sandbox whose hash matches the manifest, and adopts it: running
// containers are left alone, exited ones are handled by their restart
// policy and back-off as if it had never been away. Probe state is not
// kept: probes start over (readiness false until the first success), as
// with the kubelet.

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	internalapi "k8s.io/cri-api/pkg/apis"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Agent keeps the pods of a manifest dir running.
type Agent struct {
	cfg    Config
	rt     internalapi.RuntimeService
	log    *slog.Logger
	puller *imagePuller
	probes *probeManager

	runtimeName string // for container IDs in statuses, e.g. containerd://

	mu        sync.Mutex
	manifests []Manifest           // the last load, every document
	desired   map[string]*Manifest // loaded pods by namespace/name
	// brokenFiles are manifest files with a document that failed: their
	// running pods are kept (an edit in progress must not kill etcd).
	brokenFiles map[string]bool
	fileStamps  string
	workers     map[string]*podWorker
	statuses    map[string]podStatusEntry
	// terminating are pods whose manifest went away, as /pods shows them
	// (with a deletion timestamp) until they are stopped and removed.
	terminating map[string]v1.Pod
	// fingerprints of each pod's runtime objects at the last relist.
	fingerprints map[string]string
	loaded       bool

	workersCtx context.Context
	workersWG  sync.WaitGroup
}

type podStatusEntry struct {
	hash   string
	status v1.PodStatus
}

// podWorker serialises all work on one pod (namespace/name): creation,
// restarts, replacement after a manifest change and removal never overlap,
// and a slow graceful stop holds up no other pod.
type podWorker struct {
	name  string
	kick  chan struct{}
	timer *time.Timer
}

func (w *podWorker) poke() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// New checks cfg and builds an agent; Run starts it.
func New(cfg Config) (*Agent, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	a := &Agent{
		cfg:          cfg,
		rt:           cfg.Runtime,
		log:          cfg.Logger,
		puller:       &imagePuller{images: cfg.Images},
		desired:      map[string]*Manifest{},
		brokenFiles:  map[string]bool{},
		workers:      map[string]*podWorker{},
		statuses:     map[string]podStatusEntry{},
		terminating:  map[string]v1.Pod{},
		fingerprints: map[string]string{},
	}
	return a, nil
}

// Run keeps the pods running until ctx ends, then returns with the pods
// left running (as the kubelet does on SIGTERM).
func (a *Agent) Run(ctx context.Context) error {
	for _, dir := range []string{a.cfg.RootDir, a.cfg.PodLogsDir} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("create %s: %w", dir, err)
		}
	}
	v, err := a.rt.Version(ctx, "v1")
	if err != nil {
		return fmt.Errorf("runtime version: %w", err)
	}
	a.runtimeName = v.RuntimeName
	a.log.Info("kubelet-lite starting", "runtime", v.RuntimeName, "runtimeVersion", v.RuntimeVersion,
		"manifests", a.cfg.ManifestDir, "node", a.cfg.NodeName)

	workersCtx, stopWorkers := context.WithCancel(ctx)
	defer func() {
		stopWorkers()
		a.workersWG.Wait()
	}()
	a.mu.Lock()
	a.workersCtx = workersCtx
	a.mu.Unlock()
	a.probes = newProbeManager(workersCtx, a.rt, a.kick)

	a.checkManifests()
	a.relist(ctx)

	events := make(chan *runtimeapi.ContainerEventResponse, 128)
	eventsLost := make(chan struct{}, 1)
	go a.watchEvents(workersCtx, events, eventsLost)
	// Relist often until the runtime proves it sends events; then relisting
	// is only a safety net at the sync frequency.
	eventsSeen := false
	relist := time.NewTicker(a.cfg.RelistPeriod)
	defer relist.Stop()
	files := time.NewTicker(a.cfg.FileCheckFrequency)
	defer files.Stop()
	resync := time.NewTicker(a.cfg.SyncFrequency)
	defer resync.Stop()
	for {
		select {
		case <-ctx.Done():
			a.log.Info("kubelet-lite stopping; pods keep running")
			return nil
		case <-eventsLost:
			if eventsSeen {
				eventsSeen = false
				relist.Reset(a.cfg.RelistPeriod)
			}
		case ev := <-events:
			if !eventsSeen {
				eventsSeen = true
				relist.Reset(a.cfg.SyncFrequency)
				a.log.Info("runtime sends container events; relisting at the sync frequency only")
			}
			if name := podNameFromLabels(ev.GetPodSandboxStatus().GetLabels()); name != "" {
				a.kick(name)
			} else {
				a.relist(ctx)
			}
		case <-relist.C:
			a.relist(ctx)
		case <-files.C:
			a.checkManifests()
		case <-resync.C:
			a.kickAll()
		}
	}
}

// watchEvents follows GetContainerEvents, reconnecting after errors, and
// tells lost when the stream broke. A runtime without the stream
// (Unimplemented) is not asked again.
func (a *Agent) watchEvents(ctx context.Context, events chan<- *runtimeapi.ContainerEventResponse, lost chan<- struct{}) {
	// The CRI client blocks sending to its channel, whatever ctx says: a
	// forwarder keeps draining it until the stream has returned, so no
	// goroutine is left behind when the agent stops.
	raw := make(chan *runtimeapi.ContainerEventResponse, 16)
	streamDone := make(chan struct{})
	defer close(streamDone)
	go func() {
		for {
			select {
			case ev := <-raw:
				select {
				case events <- ev:
				case <-ctx.Done():
				}
			case <-streamDone:
				return
			}
		}
	}()
	for ctx.Err() == nil {
		err := a.rt.GetContainerEvents(ctx, raw, nil)
		if ctx.Err() != nil {
			return
		}
		select {
		case lost <- struct{}{}:
		default:
		}
		if status.Code(err) == codes.Unimplemented {
			a.log.Info("runtime has no container events; relisting", "period", a.cfg.RelistPeriod)
			return
		}
		a.log.Warn("container events stream broke; relisting until it is back", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(5 * time.Second):
		}
	}
}

// checkManifests reloads the manifest dir when a file was added, removed
// or changed since the last look, and kicks the workers of pods whose
// manifest changed.
func (a *Agent) checkManifests() {
	stamps, err := dirStamps(a.cfg.ManifestDir)
	if err != nil {
		a.log.Error("check manifests", "dir", a.cfg.ManifestDir, "err", err)
		return
	}
	a.mu.Lock()
	unchanged := a.loaded && stamps == a.fileStamps
	a.mu.Unlock()
	if unchanged {
		return
	}
	ms, err := LoadManifests(a.cfg.ManifestDir, a.cfg.NodeName)
	if err != nil {
		a.log.Error("load manifests", "dir", a.cfg.ManifestDir, "err", err)
		return
	}
	desired := map[string]*Manifest{}
	broken := map[string]bool{}
	for i := range ms {
		m := &ms[i]
		if m.Err != nil {
			a.log.Error("manifest failed to load", "file", m.File, "err", m.Err)
			broken[m.File] = true
			continue
		}
		desired[m.FullName()] = m
	}
	a.mu.Lock()
	var changed []string
	for name, m := range desired {
		if old, ok := a.desired[name]; !ok || old.Hash != m.Hash {
			changed = append(changed, name)
		}
	}
	for name, old := range a.desired {
		if _, ok := desired[name]; !ok {
			changed = append(changed, name)
			// A pod whose file now fails to load is kept running.
			if !broken[old.File] {
				a.terminating[name] = a.terminatingPod(old)
			}
		}
	}
	for name := range desired {
		delete(a.terminating, name)
	}
	a.manifests, a.desired, a.brokenFiles, a.fileStamps, a.loaded = ms, desired, broken, stamps, true
	a.mu.Unlock()
	if len(changed) > 0 {
		sort.Strings(changed)
		a.log.Info("manifests changed", "pods", changed)
	}
	for _, name := range changed {
		a.kick(name)
	}
}

// dirStamps is a cheap fingerprint of the dir: names, sizes and mtimes.
func dirStamps(dir string) (string, error) {
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for _, e := range entries {
		info, err := e.Info()
		if err != nil {
			continue
		}
		fmt.Fprintf(&b, "%s %d %d %v\n", e.Name(), info.Size(), info.ModTime().UnixNano(), info.Mode())
	}
	return b.String(), nil
}

// relist lists the runtime, kicks the workers of pods whose sandboxes or
// containers changed, starts workers for pods that should go, and removes
// foreign objects when asked to.
func (a *Agent) relist(ctx context.Context) {
	sandboxes, err := a.rt.ListPodSandbox(ctx, nil)
	if err != nil {
		a.log.Error("list sandboxes", "err", err)
		return
	}
	containers, err := a.rt.ListContainers(ctx, nil)
	if err != nil {
		a.log.Error("list containers", "err", err)
		return
	}
	prints := map[string]*strings.Builder{}
	print := func(name, s string) {
		if prints[name] == nil {
			prints[name] = &strings.Builder{}
		}
		prints[name].WriteString(s)
	}
	removedSandboxes := map[string]bool{}
	for _, s := range sandboxes {
		if !managed(s.Labels) {
			if a.cfg.RemoveForeign {
				a.removeForeignSandbox(ctx, s)
				removedSandboxes[s.Id] = true
			}
			continue
		}
		print(podNameFromLabels(s.Labels), fmt.Sprintf("s %s %d;", s.Id, s.State))
	}
	for _, c := range containers {
		if !managed(c.Labels) {
			// A foreign container in one of our sandboxes goes too: the
			// kubelet kills containers its pods do not declare.
			if a.cfg.RemoveForeign && !removedSandboxes[c.PodSandboxId] {
				a.removeForeignContainer(ctx, c)
			}
			continue
		}
		print(podNameFromLabels(c.Labels), fmt.Sprintf("c %s %d;", c.Id, c.State))
	}
	a.mu.Lock()
	var kick []string
	for name := range a.desired {
		if _, ok := prints[name]; !ok {
			prints[name] = &strings.Builder{}
		}
	}
	for name, b := range prints {
		if fp := b.String(); a.fingerprints[name] != fp {
			a.fingerprints[name] = fp
			kick = append(kick, name)
		}
	}
	for name := range a.fingerprints {
		if _, ok := prints[name]; !ok {
			delete(a.fingerprints, name)
		}
	}
	a.mu.Unlock()
	for _, name := range kick {
		a.kick(name)
	}
}

func managed(labels map[string]string) bool { return labels[labelManagedBy] == managedByValue }

func podNameFromLabels(labels map[string]string) string {
	if labels[labelPodName] == "" || !managed(labels) {
		return ""
	}
	return labels[labelPodNamespace] + "/" + labels[labelPodName]
}

// removeForeignSandbox removes a sandbox kubelet-lite did not create (the
// kubelet's orphaned-pod cleanup), with no grace: it has no spec to say one.
func (a *Agent) removeForeignSandbox(ctx context.Context, s *runtimeapi.PodSandbox) {
	a.log.Info("removing foreign sandbox", "sandbox", shortID(s.Id), "name", s.Metadata.GetName(), "namespace", s.Metadata.GetNamespace())
	if err := a.rt.StopPodSandbox(ctx, s.Id); err != nil {
		a.log.Warn("stop foreign sandbox", "sandbox", shortID(s.Id), "err", err)
		return
	}
	if err := a.rt.RemovePodSandbox(ctx, s.Id); err != nil {
		a.log.Warn("remove foreign sandbox", "sandbox", shortID(s.Id), "err", err)
	}
}

func (a *Agent) removeForeignContainer(ctx context.Context, c *runtimeapi.Container) {
	a.log.Info("removing foreign container", "id", shortID(c.Id), "name", c.Metadata.GetName())
	if c.State == runtimeapi.ContainerState_CONTAINER_RUNNING {
		if err := a.rt.StopContainer(ctx, c.Id, 0); err != nil {
			a.log.Warn("stop foreign container", "id", shortID(c.Id), "err", err)
			return
		}
	}
	if err := a.rt.RemoveContainer(ctx, c.Id); err != nil {
		a.log.Warn("remove foreign container", "id", shortID(c.Id), "err", err)
	}
}

// kick makes the worker of a pod (namespace/name) look at it soon,
// starting the worker if needed.
func (a *Agent) kick(name string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	w, ok := a.workers[name]
	if !ok {
		if a.workersCtx == nil || a.workersCtx.Err() != nil {
			return
		}
		w = &podWorker{name: name, kick: make(chan struct{}, 1)}
		a.workers[name] = w
		a.workersWG.Add(1)
		go a.runWorker(a.workersCtx, w)
	}
	w.poke()
}

func (a *Agent) kickAll() {
	a.mu.Lock()
	names := make([]string, 0, len(a.workers)+len(a.desired))
	for name := range a.workers {
		names = append(names, name)
	}
	for name := range a.desired {
		names = append(names, name)
	}
	a.mu.Unlock()
	for _, name := range names {
		a.kick(name)
	}
}

func (a *Agent) runWorker(ctx context.Context, w *podWorker) {
	defer a.workersWG.Done()
	defer func() {
		if w.timer != nil {
			w.timer.Stop()
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.kick:
		}
		retry, gone := a.syncPodByName(ctx, w.name)
		if ctx.Err() != nil {
			return
		}
		if w.timer != nil {
			w.timer.Stop()
			w.timer = nil
		}
		if retry > 0 {
			w.timer = time.AfterFunc(retry, w.poke)
		}
		if gone {
			a.mu.Lock()
			_, wanted := a.desired[w.name]
			if !wanted && len(w.kick) == 0 {
				delete(a.workers, w.name)
				delete(a.statuses, w.name)
				a.mu.Unlock()
				return
			}
			a.mu.Unlock()
		}
	}
}

// syncPodByName is one pass of a pod worker. gone: the pod is not wanted
// and nothing of it is left.
func (a *Agent) syncPodByName(ctx context.Context, name string) (retry time.Duration, gone bool) {
	namespace, podName, _ := strings.Cut(name, "/")
	selector := map[string]string{labelPodName: podName, labelPodNamespace: namespace, labelManagedBy: managedByValue}
	sandboxes, err := a.rt.ListPodSandbox(ctx, &runtimeapi.PodSandboxFilter{LabelSelector: selector})
	if err != nil {
		a.log.Error("list sandboxes", "pod", name, "err", err)
		return a.cfg.Backoff.Initial, false
	}
	containers, err := a.rt.ListContainers(ctx, &runtimeapi.ContainerFilter{LabelSelector: selector})
	if err != nil {
		a.log.Error("list containers", "pod", name, "err", err)
		return a.cfg.Backoff.Initial, false
	}
	a.mu.Lock()
	m := a.desired[name]
	broken := a.brokenFiles
	a.mu.Unlock()

	if m == nil {
		if len(sandboxes) == 0 && len(containers) == 0 {
			a.mu.Lock()
			if a.desired[name] == nil {
				delete(a.terminating, name)
			}
			a.mu.Unlock()
			return 0, true
		}
		for _, s := range sandboxes {
			if f := s.Annotations[annotationManifestFile]; broken[f] {
				a.log.Warn("manifest has errors; leaving its pod as it is", "pod", name, "file", f)
				return 0, false
			}
		}
		a.log.Info("manifest removed; stopping pod", "pod", name, "gracePeriod", gracePeriodOf(latestAnnotations(sandboxes)))
		if err := a.removePod(ctx, sandboxes, containers, ""); err != nil {
			a.log.Error("remove pod", "pod", name, "err", err)
			return a.cfg.Backoff.Initial, false
		}
		a.log.Info("pod removed", "pod", name)
		a.mu.Lock()
		if a.desired[name] == nil {
			delete(a.terminating, name)
		}
		a.mu.Unlock()
		return 0, true
	}

	// A sandbox made from another version of the manifest is replaced.
	var stale, current []*runtimeapi.PodSandbox
	for _, s := range sandboxes {
		if s.Annotations[annotationConfigHash] == m.Hash {
			current = append(current, s)
		} else {
			stale = append(stale, s)
		}
	}
	if len(stale) > 0 {
		a.log.Info("manifest changed; replacing pod", "pod", name)
		staleIDs := map[string]bool{}
		for _, s := range stale {
			staleIDs[s.Id] = true
		}
		var staleContainers, rest []*runtimeapi.Container
		for _, c := range containers {
			if staleIDs[c.PodSandboxId] {
				staleContainers = append(staleContainers, c)
			} else {
				rest = append(rest, c)
			}
		}
		if err := a.removePod(ctx, stale, staleContainers, string(m.Pod.UID)); err != nil {
			a.log.Error("remove old pod", "pod", name, "err", err)
			return a.cfg.Backoff.Initial, false
		}
		containers = rest
	}

	ps, err := a.syncPod(ctx, m, current, containers)
	if err != nil {
		a.log.Error("sync pod", "pod", name, "err", err)
		ps.retryIn(a.cfg.Backoff.Initial)
	}
	st := buildPodStatus(ps, a.probes, a.runtimeName, a.cfg.NodeIP)
	a.mu.Lock()
	a.statuses[name] = podStatusEntry{hash: m.Hash, status: st}
	a.mu.Unlock()
	return ps.retry, false
}

func latestAnnotations(sandboxes []*runtimeapi.PodSandbox) map[string]string {
	var latest *runtimeapi.PodSandbox
	for _, s := range sandboxes {
		if latest == nil || s.CreatedAt > latest.CreatedAt {
			latest = s
		}
	}
	if latest == nil {
		return nil
	}
	return latest.Annotations
}

// removePod kills and removes a pod's sandboxes and containers, then its
// log directories and emptyDir volumes, except those of keepUID (the pod
// replacing it under the same UID).
func (a *Agent) removePod(ctx context.Context, sandboxes []*runtimeapi.PodSandbox, containers []*runtimeapi.Container, keepUID string) error {
	sort.Slice(sandboxes, func(i, j int) bool { return sandboxes[i].CreatedAt < sandboxes[j].CreatedAt })
	for _, c := range containers {
		a.probes.forget(c.Id)
	}
	if err := a.killPod(ctx, sandboxes, containers); err != nil {
		return err
	}
	uids := map[string][3]string{}
	for _, s := range sandboxes {
		uids[s.Labels[labelPodUID]] = [3]string{s.Labels[labelPodNamespace], s.Labels[labelPodName], s.Labels[labelPodUID]}
	}
	for _, c := range containers {
		uids[c.Labels[labelPodUID]] = [3]string{c.Labels[labelPodNamespace], c.Labels[labelPodName], c.Labels[labelPodUID]}
	}
	for uid, id := range uids {
		if uid == "" || uid == keepUID {
			continue
		}
		if err := os.RemoveAll(podLogDir(a.cfg.PodLogsDir, id[0], id[1], id[2])); err != nil {
			a.log.Warn("remove pod log dir", "err", err)
		}
		if err := os.RemoveAll(podDir(a.cfg.RootDir, uid)); err != nil {
			a.log.Warn("remove pod dir", "err", err)
		}
	}
	return nil
}

// PodList is every manifest's pod with its last status, sorted by
// namespace/name; documents that failed to load are listed as Failed with
// reason FailedToLoad.
func (a *Agent) PodList() v1.PodList {
	a.mu.Lock()
	defer a.mu.Unlock()
	list := v1.PodList{}
	list.Kind, list.APIVersion = "PodList", "v1"
	list.Items = []v1.Pod{}
	for _, m := range sortedManifests(a.manifests) {
		list.Items = append(list.Items, podObject(&m, a.lastStatus(&m)))
	}
	names := make([]string, 0, len(a.terminating))
	for name := range a.terminating {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		list.Items = append(list.Items, a.terminating[name])
	}
	return list
}

// lastStatus is the status last computed for m's pod, if it was for this
// version of the manifest; a.mu held.
func (a *Agent) lastStatus(m *Manifest) *v1.PodStatus {
	if e, ok := a.statuses[m.FullName()]; ok && m.Pod != nil && e.hash == m.Hash {
		return &e.status
	}
	return nil
}

// terminatingPod is how /pods shows the pod of a removed manifest while it
// is stopped: as last seen, with a deletion timestamp and its grace period,
// as the kubelet shows a pod being deleted; a.mu held.
func (a *Agent) terminatingPod(m *Manifest) v1.Pod {
	pod := podObject(m, a.lastStatus(m))
	now := metav1.Now()
	pod.DeletionTimestamp = &now
	grace := int64(v1.DefaultTerminationGracePeriodSeconds)
	if m.Pod != nil && m.Pod.Spec.TerminationGracePeriodSeconds != nil {
		grace = *m.Pod.Spec.TerminationGracePeriodSeconds
	}
	pod.DeletionGracePeriodSeconds = &grace
	return pod
}

// Loaded reports whether the manifests were read at least once.
func (a *Agent) Loaded() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.loaded
}

// PodLogDir is where a pod's container logs go (for tests and tools).
func (a *Agent) PodLogDir(pod *v1.Pod) string {
	return podLogDir(a.cfg.PodLogsDir, pod.Namespace, pod.Name, string(pod.UID))
}
