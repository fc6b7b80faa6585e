package criclient

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"sigs.k8s.io/yaml"
)

// loadMessage reads a JSON or YAML file into m with crictl's decoding:
// the Go JSON decoder over the generated structs, so field names are the
// proto names (log_directory), enums are numbers, KeyValue values are
// plain strings, and unknown fields are ignored.
func loadMessage(path, what string, m proto.Message) error {
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%s config %s: file not found", what, path)
		}
		return fmt.Errorf("%s config %s: %w", what, path, err)
	}
	j, err := yaml.YAMLToJSON(data)
	if err != nil {
		return fmt.Errorf("%s config %s: not valid JSON or YAML: %v", what, path, err)
	}
	if err := json.Unmarshal(j, m); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return fmt.Errorf("%s config %s: field %s: cannot use a JSON %s as %s", what, path, te.Field, te.Value, te.Type)
		}
		return fmt.Errorf("%s config %s: %v", what, path, err)
	}
	return nil
}

// LoadPodConfig reads a PodSandboxConfig file and checks what runp needs:
// metadata with name and namespace (a missing uid is generated).
func LoadPodConfig(path string) (*runtimeapi.PodSandboxConfig, error) {
	var c runtimeapi.PodSandboxConfig
	if err := loadMessage(path, "pod", &c); err != nil {
		return nil, err
	}
	md := c.GetMetadata()
	if md == nil {
		return nil, fmt.Errorf("pod config %s: metadata is not set", path)
	}
	if md.GetName() == "" || md.GetNamespace() == "" {
		return nil, fmt.Errorf("pod config %s: metadata.name and metadata.namespace are required", path)
	}
	if md.Uid == "" {
		md.Uid = newUID()
	}
	return &c, nil
}

// LoadContainerConfig reads a ContainerConfig file; metadata.name and
// image.image are required.
func LoadContainerConfig(path string) (*runtimeapi.ContainerConfig, error) {
	var c runtimeapi.ContainerConfig
	if err := loadMessage(path, "container", &c); err != nil {
		return nil, err
	}
	if c.GetMetadata().GetName() == "" {
		return nil, fmt.Errorf("container config %s: metadata.name is required", path)
	}
	if c.GetImage().GetImage() == "" {
		return nil, fmt.Errorf("container config %s: image.image is required", path)
	}
	return &c, nil
}

// newUID returns a random RFC 4122 version 4 UUID.
func newUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
