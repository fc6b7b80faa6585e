// Package criclient is the logic behind kcrictl: it talks to a CRI runtime
// and image service (pods, containers, images, exec, logs, streaming) and
// renders what they return as crictl renders it (tables, protobuf JSON/YAML,
// go-templates). It never reads flags; cmd/kcrictl fills its option structs.
package criclient
