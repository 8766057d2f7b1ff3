//go:build tools

// Package tools pins the programs the build script compiles, so that
// `go mod tidy` keeps their dependencies in go.sum.
package tools

import (
	// Only for its manifests: the TFJob CRD is read from this module's
	// directory in the module cache. Never compiled.
	_ "github.com/kubeflow/training-operator/pkg/apis/kubeflow.org/v1"
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
