"""OC20 family (S2EF, IS2RE; SchNet, DimeNet++, equivariant models): one package, imports one way."""
