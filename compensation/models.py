# Nodes, heartbeats, detection, policy and the ledger land here (DESIGN.md sections 3-5).
