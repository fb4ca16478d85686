"""GeoJSON, TopoJSON and CSV files (or folders of them) in GitHub repositories."""

from .provider import GitHubProvider

__all__ = ["GitHubProvider"]
