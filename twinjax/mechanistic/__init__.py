"""Mechanistic twins: a fixed-step ODE solver and one simulate / fit / forecast protocol."""
