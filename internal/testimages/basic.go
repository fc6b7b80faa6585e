package testimages

import (
	"context"
	"fmt"
)

// PodImages are the two images every pod test needs, pushed to a registry.
type PodImages struct {
	Busybox string
	Pause   string
}

// PushPodImages builds busybox and pause and pushes them to the registry at
// host under prefix (e.g. "127.0.0.1:5000", "bench" →
// 127.0.0.1:5000/bench/busybox:1 and .../pause:3.10).
func (b *Builder) PushPodImages(ctx context.Context, host, prefix string) (PodImages, error) {
	busybox, err := b.Busybox()
	if err != nil {
		return PodImages{}, err
	}
	pause, err := b.Pause()
	if err != nil {
		return PodImages{}, err
	}
	refs := PodImages{Busybox: host + "/" + prefix + "/busybox:1", Pause: host + "/" + prefix + "/pause:3.10"}
	if err := Push(ctx, busybox, refs.Busybox); err != nil {
		return PodImages{}, fmt.Errorf("push %s: %w", refs.Busybox, err)
	}
	if err := Push(ctx, pause, refs.Pause); err != nil {
		return PodImages{}, fmt.Errorf("push %s: %w", refs.Pause, err)
	}
	return refs, nil
}
