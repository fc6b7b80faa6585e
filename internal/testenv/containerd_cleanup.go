package testenv

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"time"

	tasksapi "github.com/containerd/containerd/api/services/tasks/v1"
	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/leases"
	"github.com/containerd/containerd/v2/core/snapshots"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/errdefs"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// cleanup empties the daemon through its API. SIGTERM alone would leave
// shims (and their rootfs mounts) running: containerd keeps them on
// purpose so that a restarted daemon can reattach.
func (c *Containerd) cleanup(ctx context.Context) []error {
	var errs []error
	note := func(what string, err error) {
		if err != nil && !errdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("%s: %w", what, err))
		}
	}
	if c.opts.EnableCRI {
		// Through CRI first, so pods get their network torn down (CNI DEL)
		// and their netns unmounted, which deleting containers skips.
		for _, err := range c.cleanupCRI(ctx) {
			note("cri", err)
		}
	}
	cl, err := client.New(c.address)
	if err != nil {
		return append(errs, err)
	}
	defer cl.Close()

	nsList, err := cl.NamespaceService().List(ctx)
	if err != nil {
		return append(errs, fmt.Errorf("list namespaces: %w", err))
	}
	snapshotters := c.snapshotters(ctx, cl)
	for _, ns := range nsList {
		nctx := namespaces.WithNamespace(ctx, ns)

		// Tasks before containers: a container with a task cannot go.
		resp, err := cl.TaskService().List(nctx, &tasksapi.ListTasksRequest{})
		note("list tasks in "+ns, err)
		if resp != nil {
			for _, t := range resp.Tasks {
				note(fmt.Sprintf("delete task %s/%s", ns, t.ID), deleteTask(nctx, cl, t.ID))
			}
		}

		ctrs, err := cl.Containers(nctx)
		note("list containers in "+ns, err)
		for _, ctr := range ctrs {
			note(fmt.Sprintf("delete container %s/%s", ns, ctr.ID()), ctr.Delete(nctx, client.WithSnapshotCleanup))
		}

		imgs, err := cl.ImageService().List(nctx)
		note("list images in "+ns, err)
		for _, img := range imgs {
			note(fmt.Sprintf("delete image %s/%s", ns, img.Name), cl.ImageService().Delete(nctx, img.Name))
		}

		ls, err := cl.LeasesService().List(nctx)
		note("list leases in "+ns, err)
		for _, l := range ls {
			note(fmt.Sprintf("delete lease %s/%s", ns, l.ID), cl.LeasesService().Delete(nctx, l, leases.SynchronousDelete))
		}

		for _, sn := range snapshotters {
			note(fmt.Sprintf("remove %s snapshots in %s", sn, ns), removeSnapshots(nctx, cl, sn))
		}
	}
	return errs
}

// deleteTask kills a task (all its processes) and deletes it, which makes
// the shim exit and unmount the rootfs.
func deleteTask(ctx context.Context, cl *client.Client, id string) error {
	ctr, err := cl.LoadContainer(ctx, id)
	if err == nil {
		var task client.Task
		task, err = ctr.Task(ctx, nil)
		if err == nil {
			_, err = task.Delete(ctx, client.WithProcessKill)
		}
		if err == nil || errdefs.IsNotFound(err) {
			return nil
		}
	}
	// Fallback for a task whose container record is gone or whose Delete
	// failed: the raw task API.
	ts := cl.TaskService()
	_, _ = ts.Kill(ctx, &tasksapi.KillRequest{ContainerID: id, Signal: uint32(syscall.SIGKILL), All: true})
	if _, derr := ts.Delete(ctx, &tasksapi.DeleteTaskRequest{ContainerID: id}); derr != nil && status.Code(derr) != codes.NotFound {
		return fmt.Errorf("%w; raw delete: %w", err, derr)
	}
	return nil
}

// snapshotters lists the snapshotter plugins that loaded.
func (c *Containerd) snapshotters(ctx context.Context, cl *client.Client) []string {
	resp, err := cl.IntrospectionService().Plugins(ctx, "type==io.containerd.snapshotter.v1")
	if err != nil {
		return []string{"overlayfs", "native"}
	}
	var out []string
	for _, p := range resp.Plugins {
		if p.InitErr == nil {
			out = append(out, p.ID)
		}
	}
	return out
}

// removeSnapshots removes every snapshot, leaves first (a parent cannot be
// removed while it has children). When a round removes nothing (a child
// the walk did not show, e.g. one a garbage collection is still dropping),
// it runs a synchronous collection and walks again a few times before
// giving up.
func removeSnapshots(ctx context.Context, cl *client.Client, snapshotter string) error {
	sn := cl.SnapshotService(snapshotter)
	stuck := 0
	for {
		var infos []snapshots.Info
		if err := sn.Walk(ctx, func(_ context.Context, info snapshots.Info) error {
			infos = append(infos, info)
			return nil
		}); err != nil {
			return err
		}
		if len(infos) == 0 {
			return nil
		}
		parents := map[string]bool{}
		for _, info := range infos {
			parents[info.Parent] = true
		}
		removed := 0
		var lastErr error
		for _, info := range infos {
			if parents[info.Name] {
				continue
			}
			if err := sn.Remove(ctx, info.Name); err == nil || errdefs.IsNotFound(err) {
				removed++
			} else {
				lastErr = fmt.Errorf("%s: %w", info.Name, err)
			}
		}
		if removed > 0 {
			stuck = 0
			continue
		}
		if stuck++; stuck > 3 {
			return lastErr
		}
		collectGarbage(ctx, cl)
		time.Sleep(time.Duration(stuck) * 100 * time.Millisecond)
	}
}

// collectGarbage makes containerd run its garbage collector now: deleting
// a lease synchronously waits for a collection.
func collectGarbage(ctx context.Context, cl *client.Client) {
	ls := cl.LeasesService()
	l, err := ls.Create(ctx, leases.WithRandomID())
	if err == nil {
		_ = ls.Delete(ctx, l, leases.SynchronousDelete)
	}
}

// cleanupCRI stops and removes every CRI container and pod sandbox.
func (c *Containerd) cleanupCRI(ctx context.Context) []error {
	return removeCRIObjects(ctx, "unix://"+c.address)
}

// RemoveCRIObjects stops and removes every container and pod sandbox of
// the CRI runtime at endpoint ("unix:///path"), so pods get their network
// torn down (CNI DEL) and their netns unmounted, e.g. after an interrupted
// critest. NotFound (something removed meanwhile) is not an error.
func RemoveCRIObjects(ctx context.Context, endpoint string) error {
	return errors.Join(removeCRIObjects(ctx, endpoint)...)
}

func removeCRIObjects(ctx context.Context, endpoint string) []error {
	conn, err := grpc.NewClient(endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return []error{err}
	}
	defer conn.Close()
	rs := runtimeapi.NewRuntimeServiceClient(conn)
	var errs []error
	note := func(err error) {
		if err != nil && status.Code(err) != codes.NotFound {
			errs = append(errs, err)
		}
	}
	ctrs, err := rs.ListContainers(ctx, &runtimeapi.ListContainersRequest{})
	if status.Code(err) == codes.Unimplemented {
		return nil // CRI not serving (should not happen when enabled)
	}
	note(err)
	if ctrs != nil {
		for _, ctr := range ctrs.Containers {
			_, err := rs.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: ctr.Id, Timeout: 0})
			note(err)
			_, err = rs.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: ctr.Id})
			note(err)
		}
	}
	pods, err := rs.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	note(err)
	if pods != nil {
		for _, p := range pods.Items {
			_, err := rs.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: p.Id})
			note(err)
			_, err = rs.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: p.Id})
			note(err)
		}
	}
	return errs
}
