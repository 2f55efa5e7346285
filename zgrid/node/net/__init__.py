"""Network helpers of the node: namespaces, bridges, veth pairs and yggdrasil.

`links` holds the thin calls to `ip`; :class:`Yggdrasil` runs the node's yggdrasil
daemon; :class:`PlanetaryNetwork` gives zmachines their netns and planetary address.
"""

from zgrid.node.net import links
from zgrid.node.net.planetary import Attachment, PlanetaryNetwork, machine_address
from zgrid.node.net.yggdrasil import Yggdrasil

__all__ = ["Attachment", "PlanetaryNetwork", "Yggdrasil", "links", "machine_address"]
