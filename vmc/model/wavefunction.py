r"""The trial state: a product of factors, psi = prod_f psi_f, with all parameters in one flat vector.

Every factor (`vmc.model.factors`: the RBM, the Padé-Jastrow factor, the Slater determinants, the
exchange-symmetric RBM) implements the same numba kernels (`vmc.model.factors.contract`); the functions
below sum them over a tuple of factors, and both the samplers and the Python-level methods of
`Product` (`log_psi`, `grad_lap_log_psi`, `log_psi_grad_params`) call them, so there is one code path.

Parameters live in one flat float64 vector: the variational blocks of every factor in factor order,
then the fixed ones (e.g. sigma unless it is optimized). The first `n_opt` entries are what the
optimizers update (`theta`), so every optimizer works on a plain vector; each factor sees views of its
own blocks.
"""
from __future__ import annotations

import ast
import inspect
import textwrap

import numba
import numpy as np
from numba.extending import overload

from .factors import contract
from .factors.backflow import Backflow
from .factors.jastrow import PadeJastrow
from .factors.rbm import RBM, default_sigma, hidden_preactivation, sigmoid, softplus
from .factors.slater import SlaterDeterminants
from .factors.symmetric import SymmetricRBM

__all__ = ["Product", "TrialState", "default_sigma", "sigmoid", "softplus"]

# ----------------------------------------------------------------------------------------------
# Sums over the factors (kernels)
# ----------------------------------------------------------------------------------------------


# Each of these sums one contract function over a tuple of factors. They are numba-only stubs; `_combine`
# implements them.


def init_all(factors, w, x):
    raise NotImplementedError("numba only")


def refresh_all(factors, w, x):
    raise NotImplementedError("numba only")


def log_value_all(factors, w, x):
    """(ln|psi(x)|, sign psi(x)) from scratch."""
    raise NotImplementedError("numba only")


def propose_all(factors, w, x, i, xp, dx):
    """(ln|psi(x')/psi(x)|, sign of psi(x')/psi(x)) for particle i moved by dx to xp."""
    raise NotImplementedError("numba only")


def add_grad_current_all(factors, w, x, i, out):
    raise NotImplementedError("numba only")


def add_grad_proposed_all(factors, w, x, i, xp, out):
    raise NotImplementedError("numba only")


def accept_all(factors, w, x, i, xp):
    """Update every factor's cache for the proposed move, then the positions."""
    raise NotImplementedError("numba only")


def add_grad_lap_all(factors, w, x, grad, lap):
    raise NotImplementedError("numba only")


def add_dlog_all(factors, w, x, out):
    raise NotImplementedError("numba only")


def gibbs_sweep_all(factors, w, x, draws, h):
    """A Gibbs sweep (`contract.gibbs_sweep`, hidden units h) of a trial state that is one factor with a joint
    distribution to sample; numba only."""
    raise NotImplementedError("numba only")


@overload(gibbs_sweep_all, inline="always")
def _gibbs_sweep_all(factors, w, x, draws, h):
    if len(factors.types) == 1 and contract.implemented(contract.gibbs_sweep,
                                                        getattr(factors.types[0], "instance_class", None)):
        def impl(factors, w, x, draws, h):
            contract.gibbs_sweep(factors[0], w, x, draws, h)
    else:
        def impl(factors, w, x, draws, h):
            raise ValueError("Gibbs sampling needs a trial state that is one factor with hidden units to sample "
                             "(the RBM alone)")
    return impl


def _combine(stub, kernel, log_ratio: bool = False, then: str = ""):
    """Implement `stub(factors, ...)` as the flat sequence kernel(factors[0], ...), kernel(factors[1], ...), ...
    for the tuple's length (generated per length, inlined: no loop over a heterogeneous tuple, no call
    boundary). With `log_ratio` the kernels return (ln|value|, sign): their logs add, their signs multiply.
    `then` is code run after the factors (e.g. moving the particle)."""
    signature = inspect.signature(stub)
    params = ", ".join(signature.parameters)
    args = ", ".join(list(signature.parameters)[1:])

    generated = {}

    def typer(*arg_types):
        n = len(arg_types[0])
        if n in generated:
            return generated[n]
        lines = [f"def impl({params}):"]
        if log_ratio:
            lines += ["    value = 0.0", "    sign = 1.0"]
        for k in range(n):
            call = f"kernel(factors[{k}], {args})"
            lines += [f"    v, s = {call}", "    value += v", "    sign *= s"] if log_ratio else [f"    {call}"]
        lines += ["    " + line for line in then.splitlines() if line.strip()]
        lines.append("    return value, sign" if log_ratio else "    return None")
        namespace = {}
        exec("\n".join(lines), {"kernel": kernel}, namespace)
        generated[n] = namespace["impl"]
        return generated[n]
    typer.__signature__ = signature
    overload(stub, inline="always")(typer)


_combine(init_all, contract.init)
_combine(refresh_all, contract.refresh)
_combine(log_value_all, contract.log_value, log_ratio=True)
_combine(propose_all, contract.propose, log_ratio=True)
_combine(add_grad_current_all, contract.add_grad_current)
_combine(add_grad_proposed_all, contract.add_grad_proposed)
_combine(accept_all, contract.accept, then="""
D = xp.shape[0]
for d in range(D):
    x[i * D + d] = xp[d]
""")
_combine(add_grad_lap_all, contract.add_grad_lap)
_combine(add_dlog_all, contract.add_dlog)


# Hot kernels: the sums written out in the caller's own body

_SUMS = {"init_all": "init", "refresh_all": "refresh", "log_value_all": "log_value", "propose_all": "propose",
         "add_grad_current_all": "add_grad_current", "add_grad_proposed_all": "add_grad_proposed",
         "accept_all": "accept", "add_grad_lap_all": "add_grad_lap", "add_dlog_all": "add_dlog"}


class _WriteOut(ast.NodeTransformer):
    """Replace every statement `sum_all(factors, ...)` / `a, b = sum_all(factors, ...)` by its factor-by-factor
    sequence for n factors (the same operations, in the same order, as the inlined `_combine` sums), and every
    `target = kernel(factors, ...)` of another `factor_kernel` by that kernel's body (`_write_in`). `scope`, the
    caller's globals, receives the globals the kernels written in use."""

    def __init__(self, n: int, scope: dict):
        self.n, self.count, self.scope = n, 0, scope

    def _write_in(self, node, kernel):
        """Kernel's body in place of `target = kernel(factors, ...)`: its locals prefixed, its parameters bound to
        the arguments, its one `return value` (its last statement) assigned to the target."""
        func, scope = kernel.written_out
        func = ast.parse(ast.unparse(func)).body[0]        # a copy: its names are renamed below
        *body, last = func.body[1:] if ast.get_docstring(func) else func.body
        if not isinstance(last, ast.Return) or any(isinstance(n, ast.Return) for s in body for n in ast.walk(s)):
            raise TypeError(f"{func.name}: a kernel written into another returns once, at its end")
        self.count += 1
        prefix, params = f"_{func.name}{self.count}_", [a.arg for a in func.args.args]
        names = [n for s in func.body for n in ast.walk(s) if isinstance(n, ast.Name)]
        stored = {n.id for n in names if isinstance(n.ctx, ast.Store)}
        local = set(params[1:]) | stored
        given = {p: a.id for p, a in zip(params[1:], node.value.args[1:])
                 if isinstance(a, ast.Name) and p not in stored}          # a name passed is used as it is
        for n in names:
            if n.id in given:
                n.id = given[n.id]
            elif n.id in local:
                n.id = prefix + n.id
            elif n.id in scope and n.id != "factors" and n.id not in _SUMS:      # not a builtin
                if self.scope.setdefault(n.id, scope[n.id]) is not scope[n.id]:
                    raise TypeError(f"{func.name}: {n.id} means another object where it is written in")
        lines = [f"{prefix}{p} = {ast.unparse(a)}" for p, a in zip(params[1:], node.value.args[1:]) if p not in given]
        lines += [ast.unparse(s) for s in body] + [f"{ast.unparse(node.targets[0])} = {ast.unparse(last.value)}"]
        written = [self.visit(s) for s in ast.parse("\n".join(lines)).body]
        return [s for w in written for s in (w if isinstance(w, list) else [w])]

    def _calls(self, call: ast.Call) -> list[str]:
        if not (isinstance(call.args[0], ast.Name) and call.args[0].id == "factors") or call.keywords:
            raise TypeError(f"line {call.lineno}: a sum over factors takes `factors` first and no keywords")
        rest = ", ".join(ast.unparse(a) for a in call.args[1:])
        name = _SUMS[call.func.id]
        return [f"_contract.{name}(_factor{k}, {rest})" for k in range(self.n)]

    def _is_sum(self, node) -> bool:
        return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _SUMS

    def visit_Expr(self, node):
        if not self._is_sum(node.value):
            return self.generic_visit(node)
        lines = self._calls(node.value)
        if node.value.func.id == "accept_all":     # then the positions: x[i*D:(i+1)*D] = xp
            _, _, x, i, xp = (ast.unparse(a) for a in node.value.args)
            lines += [f"for _d in range({xp}.shape[0]):", f"    {x}[({i}) * {xp}.shape[0] + _d] = {xp}[_d]"]
        return ast.parse("\n".join(lines)).body

    def visit_Assign(self, node):
        kernel = self.scope.get(node.value.func.id) if isinstance(node.value, ast.Call) \
            and isinstance(node.value.func, ast.Name) else None
        if hasattr(kernel, "written_out"):
            return self._write_in(node, kernel)
        if not self._is_sum(node.value):
            return self.generic_visit(node)
        target = node.targets[0]
        if node.value.func.id not in ("propose_all", "log_value_all") or len(node.targets) != 1 \
                or not isinstance(target, ast.Tuple) or len(target.elts) != 2:
            raise TypeError(f"line {node.lineno}: only `value, sign = {node.value.func.id}(...)` is written out")
        value, sign = (ast.unparse(e) for e in target.elts)
        self.count += 1
        v, sg = f"_v{self.count}", f"_s{self.count}"
        lines = [f"{value} = 0.0", f"{sign} = 1.0"]
        for call in self._calls(node.value):
            lines += [f"{v}, {sg} = {call}", f"{value} += {v}", f"{sign} *= {sg}"]
        return ast.parse("\n".join(lines)).body

    def visit_Name(self, node):
        if node.id in _SUMS:
            raise TypeError(f"line {node.lineno}: {node.id} is used other than as a statement of its own")
        return node


def factor_kernel(fn):
    """A numba-only kernel over a tuple of factors whose body calls the sums (`propose_all(factors, ...)`, ...):
    compiled once per number of factors with every sum written out factor by factor in the kernel's own body.

    Why: the sums above, inlined into a loop, pass the whole tuple of factors through one more function
    layer, and numba's reference-count pruning then fails to remove the increments and decrements of every
    array of every factor at every call: with the RBM, the Jastrow factor and the determinants together a
    move cost twice its factors' own time (benchmarks/bench_dmc.py). Written out in the loop's own body, the
    per-factor calls cost what the factors alone cost. The first parameter must be named `factors`; a
    sum may appear only as a statement (`accept_all(factors, ...)`) or as `value, sign = propose_all(...)`;
    another factor kernel called as `target = kernel(factors, ...)` is written into the body too (the
    transition rules of `vmc.mc.moves` into the chain and the DMC step; a parameter given a name is that
    name, the kernel's other locals are renamed). Call it from numba code (an overload, compiled into and
    cached with its caller)."""
    source = textwrap.dedent(inspect.getsource(fn))
    tree = ast.parse(source)
    func = tree.body[0]
    func.decorator_list = []
    params = [a.arg for a in func.args.args]
    if params[:1] != ["factors"]:
        raise TypeError(f"{fn.__name__}: the first parameter must be `factors`")
    _WriteOut(1, dict(fn.__globals__)).visit(ast.parse(source))      # misuse is found here, not at the first call
    generated = {}

    def stub(*args):
        raise NotImplementedError("numba only")
    stub.__name__ = stub.__qualname__ = fn.__name__
    stub.__doc__ = fn.__doc__
    stub.written_out = (func, fn.__globals__)

    def typer(*arg_types):
        n = len(arg_types[0])
        if n not in generated:
            namespace = dict(fn.__globals__, _contract=contract)
            written = _WriteOut(n, namespace).visit(ast.parse(source))
            written.body[0].body[:0] = ast.parse("\n".join(f"_factor{k} = factors[{k}]" for k in range(n))).body
            written.body[0].decorator_list = []
            written.body[0].name = "impl"
            ast.fix_missing_locations(written)
            exec(compile(written, f"<{fn.__module__}.{fn.__name__} for {n} factors>", "exec"), namespace)
            generated[n] = namespace["impl"]
        return generated[n]
    typer.__signature__ = inspect.Signature([inspect.Parameter(p, inspect.Parameter.POSITIONAL_OR_KEYWORD)
                                             for p in params])
    overload(stub)(typer)
    return stub


def walker_caches(factors) -> list[np.ndarray]:
    """Every factor's per-walker cache arrays (`WALKER_CACHE` of its kernel data; the walker is their first axis):
    with the positions, a walker's whole state."""
    return [getattr(f, name) for f in factors for name in type(f).WALKER_CACHE]


# Entry points from Python (tests, the Python path)


@numba.njit(cache=True)
def initialize(factors, w, x):
    """Build walker w's caches of every factor for the positions x."""
    init_all(factors, w, x)


@numba.njit(cache=True)
def _log_value(factors, x):
    return log_value_all(factors, 0, x)


@numba.njit(cache=True)
def _grad_lap(factors, x, grad, lap):
    init_all(factors, 0, x)
    add_grad_lap_all(factors, 0, x, grad, lap)


@numba.njit(cache=True)
def _dlog(factors, x, out):
    init_all(factors, 0, x)
    add_dlog_all(factors, 0, x, out)


# ----------------------------------------------------------------------------------------------
# The product
# ----------------------------------------------------------------------------------------------


class Product:
    """psi = prod of `factors` (objects with `parameters`, `initial`, `randomize`, `constrain`, `named` and
    `kernel_data`, see `vmc.model.factors`), parameters in one flat vector (see the module docstring)."""

    def __init__(self, factors: list, particles: int, dimensions: int, params: np.ndarray | None = None):
        self.factors = list(factors)
        self.particles, self.dimensions = particles, dimensions
        self.n_visible = particles * dimensions
        blocks = [(fi, name, size, var) for fi, f in enumerate(self.factors) for name, size, var in f.parameters()]
        order = [b for b in blocks if b[3]] + [b for b in blocks if not b[3]]
        self.n_params = sum(b[2] for b in order)
        self.n_opt = sum(b[2] for b in order if b[3])
        fresh = params is None
        self.params = np.zeros(self.n_params) if fresh else np.ascontiguousarray(params, dtype=np.float64)
        if self.params.shape != (self.n_params,):
            raise ValueError(f"params must have length {self.n_params}, got {self.params.shape}")
        self.views = [{} for _ in self.factors]
        self.slots = [{} for _ in self.factors]
        self.index = {}
        start = 0
        for fi, name, size, var in order:
            self.views[fi][name] = self.params[start:start + size]
            self.slots[fi][name] = start if var else -1
            self.index[f"{self.factors[fi].name}.{name}"] = start
            start += size
        if fresh:
            for f, views in zip(self.factors, self.views):
                for name, value in f.initial().items():
                    views[name][:] = value

    @property
    def theta(self) -> np.ndarray:
        """The variational parameters: a view of the first `n_opt` entries of `params`."""
        return self.params[:self.n_opt]

    def randomize(self, rng: np.random.Generator, scale: float) -> "Product":
        """Random initial parameters (each factor draws its own, in factor order)."""
        for f, views in zip(self.factors, self.views):
            f.randomize(views, rng, scale)
        return self

    def constrain(self) -> None:
        """Project the parameters back into their domain after an update (e.g. beta >= 0, sigma > 0)."""
        for f, views in zip(self.factors, self.views):
            f.constrain(views)

    def named(self) -> dict[str, np.ndarray]:
        """Every factor's parameters in their natural shapes, as "<factor>.<name>" (for the output file)."""
        return {f"{f.name}.{k}": v for f, views in zip(self.factors, self.views) for k, v in f.named(views).items()}

    def kernel_data(self, n_walkers: int = 1) -> tuple:
        """The tuple of factors' kernel data, with caches for `n_walkers` walkers."""
        return tuple(f.kernel_data(v, s, n_walkers) for f, v, s in zip(self.factors, self.views, self.slots))

    def factor(self, name: str):
        return next((f for f in self.factors if f.name == name), None)

    # Python-level evaluation (tests, analysis): the same kernels as the samplers.
    def log_psi(self, x: np.ndarray) -> float:
        """ln |psi(x)|."""
        return float(_log_value(self.kernel_data(), np.ascontiguousarray(x, dtype=np.float64))[0])

    def sign(self, x: np.ndarray) -> float:
        """Sign of psi(x)."""
        return float(_log_value(self.kernel_data(), np.ascontiguousarray(x, dtype=np.float64))[1])

    def grad_lap_log_psi(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Gradient and diagonal second derivatives of ln |psi| in x."""
        grad, lap = np.zeros(self.n_visible), np.zeros(self.n_visible)
        _grad_lap(self.kernel_data(), np.ascontiguousarray(x, dtype=np.float64), grad, lap)
        return grad, lap

    def log_psi_grad_params(self, x: np.ndarray) -> np.ndarray:
        """d ln |psi| / d theta for the `n_opt` variational parameters."""
        out = np.zeros(self.n_params)
        _dlog(self.kernel_data(), np.ascontiguousarray(x, dtype=np.float64), out)
        return out[:self.n_opt]


class TrialState(Product):
    """psi = psi_RBM x [J] x [det D_up det D_down]: an RBM (over the coordinates, or exchange-symmetric)
    times optional Padé-Jastrow and Slater-determinant factors (with ``backflow = "rbm"`` the determinants
    at backflow quasi-particle coordinates, `vmc.model.factors.backflow`). ``fermions`` sets the Jastrow cusp values
    (spin up = particles 0..P/2-1); the determinants use orbitals at the trap's ``omega`` (for a closed
    shell any other frequency gives the same determinant up to a constant factor).

    >>> wf = TrialState(particles=2, dimensions=2, hidden=3, sigma=1.0)
    >>> wf.n_params, wf.n_opt, wf.W.shape     # a (4), b (3), W (12); sigma fixed
    (20, 19, (4, 3))
    """

    def __init__(self, particles: int, dimensions: int, hidden: int, sigma: float, g: float = 0.5,
                 optimize_sigma: bool = False, params: np.ndarray | None = None, jastrow: bool = False,
                 slater: bool = False, fermions: bool = True, omega: float = 1.0, beta: float = 1.0,
                 rbm: str = "coordinates", pair_hidden: int = 0, backflow: str = "none", backflow_hidden: int = 4):
        self._args = dict(particles=particles, dimensions=dimensions, hidden=hidden, sigma=sigma, g=g,
                          optimize_sigma=optimize_sigma, jastrow=jastrow, slater=slater, fermions=fermions,
                          omega=omega, beta=beta, rbm=rbm, pair_hidden=pair_hidden, backflow=backflow,
                          backflow_hidden=backflow_hidden)
        if rbm == "symmetric":
            first = SymmetricRBM(particles, dimensions, hidden, pair_hidden, sigma, g, optimize_sigma, omega)
        else:
            first = RBM(particles, dimensions, hidden, sigma, g, optimize_sigma)
        factors = [first]
        if jastrow:
            factors.append(PadeJastrow(particles, dimensions, fermions, beta))
        if slater and backflow == "rbm":      # the determinants at quasi-particle coordinates
            factors.append(Backflow(particles, dimensions, omega, backflow_hidden))
        elif slater:
            factors.append(SlaterDeterminants(particles, dimensions, omega))
        super().__init__(factors, particles, dimensions, params)
        self.hidden, self.g, self.optimize_sigma = hidden, float(g), bool(optimize_sigma)
        self.jastrow, self.slater, self.fermions, self.omega = bool(jastrow), bool(slater), bool(fermions), float(omega)
        self.rbm, self.backflow = rbm, backflow
        self.sigma_index = self.index["rbm.sigma"] if optimize_sigma else -1
        self.beta_index = self.index["jastrow.beta"] if jastrow else -1

    @classmethod
    def from_spec(cls, spec) -> "TrialState":
        """The trial state of a run specification (`vmc.input.spec.Spec`: its system and wavefunction sections and
        the resolved sigma), before its random initialization."""
        s, w = spec.system, spec.wavefunction
        return cls(s.particles, s.dimensions, w.hidden, spec.sigma, w.g, w.optimize_sigma, jastrow=w.jastrow == "pade",
                   slater=w.slater, fermions=s.statistics == "fermion", omega=s.omega, beta=w.beta, rbm=w.rbm,
                   pair_hidden=w.pair_hidden, backflow=w.backflow, backflow_hidden=w.backflow_hidden)

    def copy(self) -> "TrialState":
        return TrialState(**self._args, params=self.params.copy())

    def attrs(self) -> dict:
        """What the state is, as the attributes of an output file's /wavefunction: its constructor's arguments with
        the current sigma and beta, and the number of variational parameters."""
        return {**self._args, "sigma": self.sigma, "beta": self.beta, "n_opt": self.n_opt}

    @property
    def sigma(self) -> float:
        return float(self.views[0]["sigma"][0])

    @property
    def beta(self) -> float:
        return float(self.params[self.index["jastrow.beta"]]) if self.jastrow else 0.0

    @property
    def a(self) -> np.ndarray:
        return self.views[0]["a"]

    @property
    def b(self) -> np.ndarray:
        return self.views[0]["b"]

    @property
    def W(self) -> np.ndarray:
        return self.views[0]["W"].reshape(self.n_visible, self.hidden)

    def hidden_preactivation(self, x: np.ndarray) -> np.ndarray:
        """u_j(x) of the coordinate RBM (tests)."""
        u = np.empty(self.hidden)
        hidden_preactivation(x, self.b, self.W, self.sigma, u)
        return u
