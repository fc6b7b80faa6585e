// Package testimages builds the container images that tests, the demo and benchmarks need,
// entirely offline: no public registry is reachable, so images are assembled in memory,
// reproducibly (same inputs, same digests), and pushed to a local registry or written as archives.
package testimages
