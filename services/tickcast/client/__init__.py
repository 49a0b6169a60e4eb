"""tickcast.client: predictions for trading systems, from Kafka or from a gateway, with one API.

>>> from tickcast.client import TickcastClient
>>> TickcastClient.gateway("http://127.0.0.1:8080").source.url
'http://127.0.0.1:8080'
"""

from tickcast.client.client import TickcastClient
from tickcast.client.records import PredictionRecord
from tickcast.client.settings import ClientSettings
from tickcast.client.tls import GatewayTlsError
from tickcast.client.tracking import ClientStats

__all__ = ["ClientSettings", "ClientStats", "GatewayTlsError", "PredictionRecord", "TickcastClient"]
