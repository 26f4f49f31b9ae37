"""recommender's signals, for apps built on it that must know of a change without recommender
importing them (``privacy`` records a tombstone when a customer is forgotten)."""

from django.dispatch import Signal

# Sent by ``customer_forget`` inside its transaction, after the customer's rows are deleted,
# with ``customer_pk`` (the row id they had), ``external_id`` (the shop's id) and
# ``events_deleted``. A receiver that raises rolls the forget back.
customer_forgotten = Signal()
