// Package check holds the deployment checks of ordersys: tests that parse deploy/compose.yaml with
// the compose specification's Go library, render the Helm chart in helm/ordersys for every
// ci/*-values.yaml scenario and decode each object strictly into its Kubernetes API type, and read
// the root Dockerfile. It has no non-test code and imports none of the services: the contract it
// checks against is testdata/service-env.yaml, itself checked against the env:"ORDERSYS_..." tags
// of the services' config structs, read from their source with go/parser.
package check
