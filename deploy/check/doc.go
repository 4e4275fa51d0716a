// Package check holds the deployment checks of ordersys: tests that parse deploy/compose.yaml with
// the compose specification's Go library, render the Helm chart in helm/ordersys for every
// ci/*-values.yaml scenario and decode each object strictly into its Kubernetes API type, and read
// the root Dockerfile. It has no non-test code and imports none of the services: what each binary
// reads is docs/configuration.md (generated from the binaries' config structs by make env-doc, and
// checked current by make env-doc-check), and what the deployments must set for each binary is
// testdata/service-env.yaml.
package check
