"""Test helpers: a local exchange server that replays tapes over loopback, and proxies."""

from lobfeed.testing.profiles.binance import BinanceProfile, BinanceSubscription
from lobfeed.testing.proxy import HttpProxy, ProxyStats, Relayed, SocksProxy
from lobfeed.testing.server import (
    MALFORMED_FRAME,
    ExchangeServer,
    FaultPlan,
    LiveStream,
    RestRequest,
    RestResponse,
    ServerStats,
    Subscription,
    VenueLimits,
    VenueProfile,
    profile_class_for,
    register_profile,
    run_server,
)

__all__ = [
    "MALFORMED_FRAME",
    "BinanceProfile",
    "BinanceSubscription",
    "ExchangeServer",
    "FaultPlan",
    "HttpProxy",
    "LiveStream",
    "ProxyStats",
    "Relayed",
    "RestRequest",
    "RestResponse",
    "ServerStats",
    "SocksProxy",
    "Subscription",
    "VenueLimits",
    "VenueProfile",
    "profile_class_for",
    "register_profile",
    "run_server",
]
