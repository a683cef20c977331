"""gitlab-eci-bootstrap: a GitLab group runner on serverless Kubernetes, in one command."""

from __future__ import annotations

__version__ = "0.1.0"
