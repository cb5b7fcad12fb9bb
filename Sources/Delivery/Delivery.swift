// Module Delivery.
