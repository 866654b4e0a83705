"""The seeded MSP portfolio: clients, their dynamics, the events they produce, the hidden truth."""
