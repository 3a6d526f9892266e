"""Monte Carlo methods: random streams, transition rules, the VMC samplers and estimators, the optimizers,
and fixed-node DMC."""
