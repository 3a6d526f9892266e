"""The factors of the trial state, one module each, all written against `vmc.model.factors.contract`:

* `rbm`: the Gaussian-binary RBM over the P*D coordinates (psi = F^g);
* `symmetric`: an exchange-symmetric RBM (one-body hidden units shared by all particles, pair hidden
  units fed by r_ij);
* `jastrow`: the Padé-Jastrow factor with Kato's cusps;
* `slater`: Slater determinants of harmonic-oscillator orbitals for closed shells;
* `backflow`: the same determinants at backflow quasi-particle coordinates (replaces `slater` when on).

`vmc.model.wavefunction.TrialState` multiplies them; the samplers see only the contract.
"""
