//! kubectl-r4's integration tests, one binary (`[[test]] wrap`): the
//! filter through its binary (`filter`), against real registries
//! (`registry`: docker-registry on loopback, images pushed by podman),
//! misbehaving registries played by the test (`hostile`), the output
//! against the Kubernetes schema (`filter`, kubernetes-validate)
//! and in a real pod (`kube_play`: podman kube play with the devserver).

mod filter;
mod hostile;
mod kube_play;
mod registry;
mod util;
