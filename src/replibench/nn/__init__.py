"""Neural-network building blocks shared by several families (no family imports another)."""
