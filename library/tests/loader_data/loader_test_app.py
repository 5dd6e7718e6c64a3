"""A tiny Pyramid application loaded by the ini files of the loader and setup_process tests."""

from pyramid.config import Configurator
from pyramid.response import Response


def main(global_config, **settings):
    """Build the application: one route whose path comes from the (interpolated) settings."""
    del global_config
    with Configurator(settings=settings) as config:
        config.add_route("greeting", "/" + settings["greeting"])
        config.add_view(
            lambda request: Response(request.registry.settings["greeting"]), route_name="greeting"
        )
        return config.make_wsgi_app()
