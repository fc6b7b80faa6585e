// Package endpoints finds the CRI endpoint to talk to, the way crictl users
// expect, and explains what it tried.
//
// It is shared by kcrictl and kubelet-lite and holds no global state: every
// input (flags, environment, config file path, default list) comes in through
// Options.
//
// Runtime endpoint precedence:
//
//	--runtime-endpoint/-r  >  $CONTAINER_RUNTIME_ENDPOINT  >  runtime-endpoint in the config file  >  default list
//
// Image endpoint precedence:
//
//	--image-endpoint/-i  >  $IMAGE_SERVICE_ENDPOINT  >  image-endpoint in the config file  >  the runtime endpoint
//
// The config file (crictl.yaml format) is found by
//
//	--config/-c  >  $CRI_CONFIG_FILE  >  /etc/crictl.yaml
//
// A missing default config file is fine; a missing file that was named
// explicitly is an error.
//
// An endpoint set by flag, environment or config file is the only candidate.
// Otherwise the default list is tried in order (DefaultEndpoints): a socket
// file that does not exist is skipped without dialing, one that exists is
// asked runtime.v1.RuntimeService/Version with a per-probe timeout, and the
// first that answers wins; its gRPC connection is handed to the caller.
// Using the default list adds a deprecation warning to the result
// (Resolution.Warnings) for the caller to print.
//
// Resolve returns the connection; Diagnose probes every candidate and returns
// records that render as a table or JSON. When nothing answers, Resolve returns
// a *NoEndpointError whose message is a short diagnosis.
package endpoints
