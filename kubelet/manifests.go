package kubelet

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	kjson "k8s.io/apimachinery/pkg/runtime/serializer/json"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// Manifest is one pod document of one manifest file. Either Pod is set
// (decoded, validated and defaulted) or Err says why the document did not
// load; a failed document still carries the name and namespace it declared
// when those could be read, so /pods can show it.
type Manifest struct {
	File  string // path of the manifest file
	Index int    // 0-based document index within the file
	Pod   *v1.Pod
	// Hash identifies the document's content on this node: a change in the
	// manifest changes it, and the pod is recreated. It is the sandbox's
	// kubernetes.io/config.hash annotation.
	Hash string
	Err  error

	// Name and Namespace are what a failed document declared ("" if
	// unreadable).
	Name, Namespace string
}

// FullName is namespace/name, the key kubelet-lite keeps pods by.
func (m Manifest) FullName() string {
	if m.Pod != nil {
		return m.Pod.Namespace + "/" + m.Pod.Name
	}
	return m.Namespace + "/" + m.Name
}

// LoadManifests reads every regular, non-hidden file in dir (as the kubelet
// does, whatever the extension) and returns their pod documents in file
// order. A missing dir holds no pods. Documents that fail to decode or
// validate come back with Err set; they never stop the others from loading.
// Two documents naming the same namespace/name: the later one fails.
func LoadManifests(dir, nodeName string) ([]Manifest, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read manifest dir: %w", err)
	}
	var all []Manifest
	seen := map[string]string{}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") || !e.Type().IsRegular() {
			continue
		}
		path := filepath.Join(dir, e.Name())
		data, err := os.ReadFile(path)
		if err != nil {
			all = append(all, Manifest{File: path, Err: fmt.Errorf("%s: %w", path, err)})
			continue
		}
		for _, m := range DecodeManifest(path, data, nodeName) {
			if m.Err == nil {
				if other, dup := seen[m.FullName()]; dup {
					m.Err = fmt.Errorf("%s: document %d: metadata.name: pod %s is already defined in %s", path, m.Index, m.FullName(), other)
					m.Name, m.Namespace, m.Pod = m.Pod.Name, m.Pod.Namespace, nil
				} else {
					seen[m.FullName()] = fmt.Sprintf("%s (document %d)", path, m.Index)
				}
			}
			all = append(all, m)
		}
	}
	return all, nil
}

// DecodeManifest splits data into documents (a YAML stream separated by
// "---", or a stream of JSON objects), decodes each strictly into a v1.Pod,
// validates, defaults and gives it its UID. Errors name the file, the
// document and the field.
func DecodeManifest(path string, data []byte, nodeName string) []Manifest {
	docs, err := splitDocuments(data)
	if err != nil {
		return []Manifest{{File: path, Err: fmt.Errorf("%s: %w", path, err)}}
	}
	var out []Manifest
	for i, doc := range docs {
		m := decodeDocument(doc, nodeName)
		m.File, m.Index = path, i
		if m.Err != nil {
			m.Err = fmt.Errorf("%s: document %d: %w", path, i, m.Err)
		}
		out = append(out, m)
	}
	if len(out) == 0 {
		return []Manifest{{File: path, Err: fmt.Errorf("%s: no pod document", path)}}
	}
	return out
}

// splitDocuments returns the non-empty documents of data, each as JSON.
func splitDocuments(data []byte) ([][]byte, error) {
	trimmed := bytes.TrimSpace(data)
	var docs [][]byte
	if bytes.HasPrefix(trimmed, []byte("{")) {
		dec := json.NewDecoder(bytes.NewReader(trimmed))
		for dec.More() {
			var raw json.RawMessage
			if err := dec.Decode(&raw); err != nil {
				return nil, fmt.Errorf("document %d: invalid JSON: %w", len(docs), err)
			}
			docs = append(docs, raw)
		}
		return docs, nil
	}
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for {
		doc, err := r.Read()
		if err == io.EOF {
			return docs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", len(docs), err)
		}
		js, err := yaml.YAMLToJSON(doc)
		if err != nil {
			return nil, fmt.Errorf("document %d: invalid YAML: %w", len(docs), err)
		}
		if t := bytes.TrimSpace(js); len(t) == 0 || bytes.Equal(t, []byte("null")) {
			continue // an empty document between separators
		}
		docs = append(docs, js)
	}
}

// decodeDocument decodes one JSON document strictly, then validates it.
func decodeDocument(doc []byte, nodeName string) Manifest {
	var m Manifest
	var meta struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name      string `json:"name"`
			Namespace string `json:"namespace"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(doc, &meta); err != nil {
		m.Err = fmt.Errorf("not a JSON/YAML object: %w", err)
		return m
	}
	m.Name, m.Namespace = meta.Metadata.Name, meta.Metadata.Namespace
	if m.Namespace == "" {
		m.Namespace = metav1NamespaceDefault
	}
	if meta.Kind != "Pod" || meta.APIVersion != "v1" {
		m.Err = fmt.Errorf("apiVersion/kind: must be v1/Pod, got %q/%q", meta.APIVersion, meta.Kind)
		return m
	}
	pod := &v1.Pod{}
	if err := yaml.UnmarshalStrict(doc, pod); err != nil {
		m.Err = fmt.Errorf("decode: %w", withFieldPaths(doc, err))
		return m
	}
	// The hash covers the decoded pod, so comments and formatting do not
	// count, and the node name, as the kubelet's static pod UIDs do.
	canonical, err := json.Marshal(pod)
	if err != nil {
		m.Err = fmt.Errorf("encode: %w", err)
		return m
	}
	m.Hash = manifestHash(canonical, nodeName)
	if errs := validatePod(pod); len(errs) > 0 {
		m.Err = errs.ToAggregate()
		return m
	}
	applyDefaults(pod, nodeName)
	if pod.UID == "" {
		pod.UID = types.UID(m.Hash)
	}
	m.Pod = pod
	return m
}

const metav1NamespaceDefault = "default"

// manifestHash is 32 hex digits of sha256(node name, pod).
func manifestHash(canonicalPod []byte, nodeName string) string {
	h := sha256.New()
	fmt.Fprintf(h, "host:%s\n", nodeName)
	h.Write(canonicalPod)
	return hex.EncodeToString(h.Sum(nil))[:32]
}

// sortedManifests orders manifests by full name (for stable output).
func sortedManifests(ms []Manifest) []Manifest {
	out := append([]Manifest(nil), ms...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].FullName() < out[j].FullName() })
	return out
}

// withFieldPaths replaces a strict decoding error that names only a field
// ("unknown field \"imagee\"") by the API machinery's, which names its
// path (spec.containers[0].imagee), as kubectl reports it.
func withFieldPaths(doc []byte, err error) error {
	scheme := runtime.NewScheme()
	if v1.AddToScheme(scheme) != nil {
		return err
	}
	serializer := kjson.NewSerializerWithOptions(kjson.DefaultMetaFactory, scheme, scheme, kjson.SerializerOptions{Strict: true})
	if _, _, strictErr := serializer.Decode(doc, nil, &v1.Pod{}); strictErr != nil && runtime.IsStrictDecodingError(strictErr) {
		return strictErr
	}
	return err
}
