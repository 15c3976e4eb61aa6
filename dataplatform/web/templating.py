"""The Jinja2 environment of the web pages (GOV.UK Frontend styles, served locally)."""

from pathlib import Path

from fastapi.templating import Jinja2Templates

from dataplatform import __version__

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(HERE / "templates"))
templates.env.globals["version"] = __version__
STATIC_DIR = HERE / "static"
