package cri

import (
	"context"
	"fmt"

	"github.com/containerd/containerd/v2/core/snapshots"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// ImageFsInfo reports what the snapshotter's snapshots use, at the
// snapshotter's root as containerd's introspection service exports it.
func (s *imageService) ImageFsInfo(ctx context.Context, _ *runtimeapi.ImageFsInfoRequest) (*runtimeapi.ImageFsInfoResponse, error) {
	name := s.images.Snapshotter()
	sn := s.client.SnapshotService(name)
	var bytes, inodes uint64
	err := sn.Walk(ctx, func(ctx context.Context, info snapshots.Info) error {
		u, err := sn.Usage(ctx, info.Name)
		if err == nil {
			bytes += uint64(u.Size)
			inodes += uint64(u.Inodes)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("walk %s snapshots: %w", name, err)
	}
	mountpoint := name
	if resp, err := s.client.IntrospectionService().Plugins(ctx, fmt.Sprintf("type==io.containerd.snapshotter.v1,id==%s", name)); err == nil {
		for _, p := range resp.Plugins {
			if root, ok := p.Exports["root"]; ok {
				mountpoint = root
			}
		}
	}
	usage := &runtimeapi.FilesystemUsage{
		Timestamp:  nowNano(),
		FsId:       &runtimeapi.FilesystemIdentifier{Mountpoint: mountpoint},
		UsedBytes:  &runtimeapi.UInt64Value{Value: bytes},
		InodesUsed: &runtimeapi.UInt64Value{Value: inodes},
	}
	return &runtimeapi.ImageFsInfoResponse{
		ImageFilesystems:     []*runtimeapi.FilesystemUsage{usage},
		ContainerFilesystems: []*runtimeapi.FilesystemUsage{usage},
	}, nil
}
