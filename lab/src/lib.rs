//! tortie-lab: containerlab topologies, the netns runner, interop/e2e test support.
