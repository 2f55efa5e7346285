"""Network helpers of the node: namespaces, bridges, veth pairs and yggdrasil."""
