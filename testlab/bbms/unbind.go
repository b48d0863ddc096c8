package bbms

// Unbind removes a router serial's binding, as an operator in the BBMS
// console would; it returns the customer it was bound to, and false when
// the serial was not bound.
func (s *Server) Unbind(serial string) (customerID string, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	customerID, ok = s.bindings[serial]
	delete(s.bindings, serial)
	if ok {
		s.logger.Info("bbms: router unbound", "serial", serial, "customer", customerID)
	}
	return customerID, ok
}
