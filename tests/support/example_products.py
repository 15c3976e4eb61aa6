"""The housing example's four products on their own: the catalogue and pages that tests written
for that example look at (the shipped folder also holds the court interpreters example)."""

from __future__ import annotations

from dataplatform.products.product import DataProduct, load_products

HOUSING_EXAMPLE = ("social_housing_availability", "prison_releases_housing_need", "area_supply_demand",
                   "housing_shortfall_warnings")
HOUSING_FOLDERS = ("hmpps/social_housing_availability", "hmpps/prison_releases_housing_need",
                   "platforms/area_supply_demand", "platforms/housing_shortfall_warnings")


def housing_example_products() -> dict[str, DataProduct]:
    products = load_products()
    return {name: products[name] for name in HOUSING_EXAMPLE}
