"""Simulators of the example services, for demos and the platform's main job.

``run_housing_simulator`` and ``run_releases_simulator`` (prison releases against social
housing) and ``run_hearings_simulator`` and ``run_bookings_simulator`` (court hearings
against interpreter bookings) are what ``dataplatform run`` and ``dataplatform simulate``
call; ``scenarios`` holds the scripted scenarios they share.
"""

from dataplatform.producers.simulators.bookings import run_bookings_simulator
from dataplatform.producers.simulators.hearings import run_hearings_simulator
from dataplatform.producers.simulators.housing import run_housing_simulator
from dataplatform.producers.simulators.releases import run_releases_simulator
from dataplatform.producers.simulators.scenarios import SimulationReport, scenario_plan

__all__ = ["SimulationReport", "run_bookings_simulator", "run_hearings_simulator", "run_housing_simulator",
           "run_releases_simulator", "scenario_plan"]
