// Package e2e holds the end-to-end tests of the checkout backend: the real
// template.yaml served by the Docker-free local stack (local/devstack, what
// `make dev` runs), driven with real HTTP requests on loopback.
package e2e
