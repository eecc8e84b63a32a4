"""Crystal family (MP-20, Perov-5, Carbon-24; DiffCSP, CrysBFN): one package, imports one way."""
