"""HAProxy in front of several hubs (issue 17), rendered from :class:`~balancer.settings.BalancerSettings`."""
