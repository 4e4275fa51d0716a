module github.com/ordersys/ordersys/pkg

go 1.26

replace github.com/gocql/gocql => github.com/scylladb/gocql v1.16.0
