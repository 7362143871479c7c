"""The SIR-on-a-dynamic-random-network model in twinjax, starsim and Mesa, with one parameter set.

Mapping (all three run the same model):

- starsim ``ss.RandomNet(n_contacts=k)`` (dynamic, ``dur=0``: every agent owns ``k/2`` fresh
  edges to uniform partners each step, transmission both ways) = twinjax ``RandomNet(k)`` =
  the Mesa model below (each agent draws ``k/2`` uniform partners per step);
- starsim ``beta=ss.perday(beta)``, per-edge per-step probability ``1 - exp(-beta dt)`` = twinjax
  ``Layer(RandomNet(k), beta)`` with ``dt``;
- starsim ``dur_inf=ss.expon(scale=ss.days(1 / gamma))``, recovery checked before transmission
  = twinjax ``SEIRParams(gamma)`` (recovery w.p. ``1 - exp(-gamma dt)`` at the start of a step);
- ``init_prev=ss.bernoulli(i0)``, ``p_death=0``; one step of ``dt`` days.

starsim and Mesa are optional (the ``bench`` extra) and imported lazily.
"""

import math
from dataclasses import dataclass

import jax

from twinjax.abm.agents import init_agents
from twinjax.abm.contacts import Layer
from twinjax.abm.epidemic import SEIRParams, attack_rate, simulate
from twinjax.abm.networks import RandomNet


@dataclass(frozen=True)
class SIRNetSpec:
    n_agents: int = 1_000_000
    n_steps: int = 100
    n_contacts: int = 10
    beta: float = 0.05  # per contact per day
    gamma: float = 0.2  # per day (mean infectious duration 5 days)
    init_prev: float = 0.01
    dt: float = 1.0


def twinjax_attack_rates(spec: SIRNetSpec, keys) -> jax.Array:
    """Final attack rates of an ensemble (one run per key, vmapped), compiled once per spec."""
    return _twinjax_fn(spec)(keys)


def _twinjax_fn(spec: SIRNetSpec):
    layers = (Layer(RandomNet(spec.n_contacts), spec.beta),)

    def run(key):
        agents = init_agents(jax.random.fold_in(key, 1), spec.n_agents, spec.init_prev)
        state, _ = simulate(key, agents, SEIRParams(spec.gamma), layers, spec.n_steps, dt=spec.dt)
        return attack_rate(state)

    return jax.jit(jax.vmap(run))


def twinjax_run(spec: SIRNetSpec, seed: int) -> float:
    return float(_twinjax_fn(spec)(jax.random.split(jax.random.key(seed), 1))[0])


def starsim_sim(spec: SIRNetSpec, seed: int):
    """The starsim ``Sim`` of the spec (not yet run); ``n_steps`` steps of ``dt`` days."""
    import starsim as ss

    sir = ss.SIR(
        beta=ss.perday(spec.beta),
        dur_inf=ss.expon(scale=ss.days(1.0 / spec.gamma)),
        init_prev=ss.bernoulli(p=spec.init_prev),
        p_death=ss.bernoulli(p=0.0),
    )
    return ss.Sim(
        n_agents=spec.n_agents,
        diseases=sir,
        networks=ss.RandomNet(n_contacts=spec.n_contacts),
        dt=ss.days(spec.dt),
        start=ss.days(0),
        dur=ss.days(spec.dt * (spec.n_steps - 1)),  # n_steps time points, one step each
        rand_seed=seed,
        verbose=0,
    )


def starsim_attack_rate(sim) -> float:
    res = sim.results.sir
    return 1.0 - float(res.n_susceptible[-1]) / sim.pars.n_agents


def mesa_model(spec: SIRNetSpec, seed: int):
    """The same model with one Mesa ``Agent`` object per person (pure Python)."""
    import mesa

    p_trans = -math.expm1(-spec.beta * spec.dt)
    p_rec = -math.expm1(-spec.gamma * spec.dt)
    half = spec.n_contacts // 2

    class Person(mesa.Agent):
        def __init__(self, model, infected):
            super().__init__(model)
            self.state = "I" if infected else "S"
            self.infected_next = False

        def progress(self):
            if self.state == "I" and self.model.t > 0 and self.random.random() < p_rec:
                self.state = "R"

        def contact(self):
            people = self.model.people
            for _ in range(half):
                other = people[self.random.randrange(len(people))]
                if self.state == "I" and other.state == "S" and self.random.random() < p_trans:
                    other.infected_next = True
                if other.state == "I" and self.state == "S" and self.random.random() < p_trans:
                    self.infected_next = True

        def commit(self):
            if self.infected_next:
                self.state, self.infected_next = "I", False

    class SIRModel(mesa.Model):
        def __init__(self):
            super().__init__(seed=seed)
            self.t = 0
            self.people = [
                Person(self, self.random.random() < spec.init_prev) for _ in range(spec.n_agents)
            ]

        def step(self):
            self.agents.do("progress")
            self.agents.do("contact")
            self.agents.do("commit")
            self.t += 1

        def attack_rate(self):
            return sum(p.state != "S" for p in self.people) / len(self.people)

    return SIRModel()
