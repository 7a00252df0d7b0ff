-- Customers linked to a CRM id: the "existing customers" the mass-change guard measures against.
SELECT count(*) FROM sumit_customers WHERE sumit_customer_id IS NOT NULL
