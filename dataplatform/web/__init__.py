"""The platform's single web service: the schema registry now, catalogue and warnings later."""

from dataplatform.web.app import create_app

__all__ = ["create_app"]
