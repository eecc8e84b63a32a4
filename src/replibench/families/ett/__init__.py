"""ETT family (Informer's ETTh1/h2/m1/m2; DLinear, TimesNet, naive baselines): one package, imports one way."""
